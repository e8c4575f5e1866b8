import type { Tenant, TenantCreate, TenantPatch } from "../schemas/tenant.js";
import { auditInsert } from "../store/audit.js";
import type { Queryable } from "../store/db.js";
import { notifyVerifyChange } from "../store/notify.js";
import { TENANT_PATCHABLE, tenantFindByIdForUpdate, tenantInsert, tenantSetStatus, tenantUpdate } from "../store/tenants.js";
import { type Actor, auditActor } from "./actor.js";
import { moveOnTenantChange } from "./entitlements.js";
import { AppError, conflict, notFound } from "./errors.js";
import type { Outcome } from "./outcome.js";

export type { Outcome } from "./outcome.js";

const target = (t: Tenant) => ({ tenant_id: t.id, target_type: "tenant", target_id: t.id });

export async function createTenant(q: Queryable, input: TenantCreate, actor: Actor): Promise<Tenant> {
  const tenant = await tenantInsert(q, input);
  await auditInsert(q, [{ ...target(tenant), action: "tenant.created", ...auditActor(actor, { slug: tenant.slug }) }]);
  return tenant;
}

export async function updateTenant(q: Queryable, id: string, patch: TenantPatch, actor: Actor): Promise<Outcome<Tenant>> {
  const before = await tenantFindByIdForUpdate(q, id);
  if (!before) throw notFound("tenant");
  const start = patch.contract_start !== undefined ? patch.contract_start : before.contract_start;
  const end = patch.contract_end !== undefined ? patch.contract_end : before.contract_end;
  if (start !== null && end !== null && Date.parse(end) < Date.parse(start)) {
    throw new AppError("invalid_input", "contract_end must not be before contract_start", {
      errors: [{ field: "body/contract_end", message: "must not be before contract_start" }],
    });
  }
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const field of TENANT_PATCHABLE) {
    const to = patch[field];
    if (to === undefined) continue;
    const from = before[field];
    // Timestamps are recorded in UTC, as the API shows them, whatever offset the caller used.
    if (!sameValue(from, to)) changes[field] = { from, to: isTimestamp(to) ? utc(to) : to };
  }
  if (Object.keys(changes).length === 0) return { value: before, changed: false };
  const tenant = await tenantUpdate(q, id, patch);
  await auditInsert(q, [{ ...target(tenant), action: "tenant.updated", ...auditActor(actor, { changes }) }]);
  return { value: tenant, changed: true };
}

const utc = (v: string): string => {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? v : d.toISOString();
};
const isTimestamp = (v: unknown): v is string => typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v);

/** Timestamps compare by instant, so "…Z" and "…+00:00" are the same value. */
function sameValue(a: unknown, b: unknown): boolean {
  if (isTimestamp(a) && isTimestamp(b)) return Date.parse(a) === Date.parse(b);
  return a === b;
}

/** pending -> active, with its requested entitlements; active stays (no audit); cancelled is terminal (409). */
export async function activateTenant(q: Queryable, id: string, actor: Actor): Promise<Outcome<Tenant>> {
  const before = await tenantFindByIdForUpdate(q, id);
  if (!before) throw notFound("tenant");
  if (before.status === "active") return { value: before, changed: false };
  if (before.status === "cancelled") throw conflict("a cancelled tenant cannot be activated");
  const tenant = await tenantSetStatus(q, id, "active");
  await auditInsert(q, [{ ...target(tenant), action: "tenant.activated", ...auditActor(actor, { from: before.status }) }]);
  await moveOnTenantChange(q, id, "activated", actor);
  // Instances cache the tenant's facts and entitlements for verify: one notice covers both.
  await notifyVerifyChange(q, { tenant_id: id });
  return { value: tenant, changed: true };
}

/** Any status -> cancelled, with its requested, trial and active entitlements; cancelled stays (no audit). */
export async function cancelTenant(q: Queryable, id: string, actor: Actor): Promise<Outcome<Tenant>> {
  const before = await tenantFindByIdForUpdate(q, id);
  if (!before) throw notFound("tenant");
  if (before.status === "cancelled") return { value: before, changed: false };
  const tenant = await tenantSetStatus(q, id, "cancelled");
  await auditInsert(q, [{ ...target(tenant), action: "tenant.cancelled", ...auditActor(actor, { from: before.status }) }]);
  await moveOnTenantChange(q, id, "cancelled", actor);
  await notifyVerifyChange(q, { tenant_id: id });
  return { value: tenant, changed: true };
}
