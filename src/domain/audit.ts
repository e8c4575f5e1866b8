import {
  AUDIT_METADATA_MAX_BYTES,
  AUDIT_METADATA_MAX_DEPTH,
  type AuditEvent,
  type AuditEventCreate,
  isReservedAction,
} from "../schemas/audit.js";
import { type AuditInput, auditInsert, auditMissingRefs } from "../store/audit.js";
import type { Queryable } from "../store/db.js";
import type { Actor } from "./actor.js";
import { AppError, type FieldError } from "./errors.js";
import { jsonInputError } from "./json-input.js";

/**
 * An event a product posts, as it is stored. The actor is the event's own
 * actor_id, else X-Actor-Id, else the principal. `metadata.principal` is
 * the registry's to write: whenever the actor is someone other than the
 * caller it names the caller, and a caller cannot put another name there.
 */
function toInput(e: AuditEventCreate, actor: Actor): AuditInput {
  const actorId = e.actor_id ?? actor.actorId;
  const metadata = { ...(e.metadata ?? {}) };
  if (e.actor_id !== undefined || actor.onBehalf || actorId !== actor.principal || "principal" in metadata)
    metadata.principal = actor.principal;
  return {
    action: e.action,
    tenant_id: e.tenant_id ?? null,
    product: e.product ?? null,
    actor_id: actorId,
    target_type: e.target_type ?? null,
    target_id: e.target_id ?? null,
    metadata,
    occurred_at: e.occurred_at ?? null,
  };
}

/**
 * What a product posts is checked before anything is stored: the action is
 * not one of the registry's own, and the metadata nests at most
 * AUDIT_METADATA_MAX_DEPTH levels (checked without recursion, before the
 * size check serializes it) and fits in AUDIT_METADATA_MAX_BYTES.
 */
function checkPosted(events: readonly AuditEventCreate[], field: (i: number) => string): void {
  const errors: FieldError[] = [];
  events.forEach((e, i) => {
    if (isReservedAction(e.action)) {
      errors.push({ field: `${field(i)}/action`, message: "is reserved for the registry's own events" });
    }
    if (!e.metadata) return;
    const deep = jsonInputError(e.metadata, `${field(i)}/metadata`, AUDIT_METADATA_MAX_DEPTH);
    if (deep) {
      errors.push(deep);
      return;
    }
    const bytes = Buffer.byteLength(JSON.stringify(e.metadata), "utf8");
    if (bytes > AUDIT_METADATA_MAX_BYTES) {
      errors.push({ field: `${field(i)}/metadata`, message: `is ${bytes} bytes serialized; at most ${AUDIT_METADATA_MAX_BYTES}` });
    }
  });
  if (errors.length > 0) throw new AppError("invalid_input", `${errors[0]?.field} ${errors[0]?.message}`, { errors });
}

/** 404 naming each event whose tenant or product does not exist. */
async function checkRefs(q: Queryable, events: readonly AuditEventCreate[], field: (i: number) => string): Promise<void> {
  const tenants = new Set<string>();
  const products = new Set<string>();
  for (const e of events) {
    if (e.tenant_id) tenants.add(e.tenant_id.toLowerCase());
    if (e.product) products.add(e.product);
  }
  const missing = await auditMissingRefs(q, [...tenants], [...products]);
  if (missing.tenants.length === 0 && missing.products.length === 0) return;
  const unknownTenant = new Set(missing.tenants);
  const unknownProduct = new Set(missing.products);
  const errors: FieldError[] = [];
  events.forEach((e, i) => {
    if (e.tenant_id && unknownTenant.has(e.tenant_id.toLowerCase()))
      errors.push({ field: `${field(i)}/tenant_id`, message: "tenant not found" });
    if (e.product && unknownProduct.has(e.product)) errors.push({ field: `${field(i)}/product`, message: "product not found" });
  });
  throw new AppError("not_found", `${errors[0]?.field}: ${errors[0]?.message}`, { errors });
}

/** A posted event, checked and with its actor settled, ready for auditInsert or an AuditAppender. */
export function postedEvent(event: AuditEventCreate, actor: Actor): AuditInput {
  checkPosted([event], () => "body");
  return toInput(event, actor);
}

/** Append a batch of posted events: every event is stored, in order, or none is. */
export async function appendEvents(q: Queryable, events: readonly AuditEventCreate[], actor: Actor): Promise<AuditEvent[]> {
  const field = (i: number) => `body/events/${i}`;
  checkPosted(events, field);
  await checkRefs(q, events, field);
  return auditInsert(
    q,
    events.map((e) => toInput(e, actor)),
  );
}
