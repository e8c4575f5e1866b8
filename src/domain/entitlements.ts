import type { CatalogRequest } from "../schemas/catalog.js";
import type { Entitlement, EntitlementChange, EntitlementStatus } from "../schemas/entitlement.js";
import type { Tenant } from "../schemas/tenant.js";
import { type AuditInput, auditInsert } from "../store/audit.js";
import type { Queryable } from "../store/db.js";
import {
  entitlementFind,
  entitlementListByTenant,
  entitlementMoveAll,
  entitlementPut,
  type StoredEntitlement,
  toEntitlement,
} from "../store/entitlements.js";
import { notifyVerifyChange } from "../store/notify.js";
import { productFind, type StoredProduct } from "../store/products.js";
import { tenantFindById, tenantFindByIdForUpdate } from "../store/tenants.js";
import { type Actor, auditActor } from "./actor.js";
import { AppError, conflict, notFound } from "./errors.js";
import type { Outcome } from "./outcome.js";
import { expireDueTrials } from "./trials.js";

/** Statuses in which a request has nothing left to do. */
const HELD: ReadonlySet<EntitlementStatus> = new Set(["requested", "trial", "active"]);

const event = (tenantId: string, product: string, action: string, actor: Actor, metadata: Record<string, unknown>): AuditInput => ({
  tenant_id: tenantId,
  product,
  target_type: "entitlement",
  target_id: product,
  action,
  ...auditActor(actor, metadata),
});

/**
 * Every change to an entitlement starts here. Locking the tenant row
 * serialises all changes to one tenant's entitlements (requests, trials,
 * grants, activation, cancellation), so racing calls cannot create two
 * rows or two trials. Then its ended trials are stored as expired, so the
 * rules below see the status every reader sees.
 */
async function begin(q: Queryable, tenantId: string, product: string): Promise<{ tenant: Tenant; current: StoredEntitlement | null }> {
  const tenant = await tenantFindByIdForUpdate(q, tenantId);
  if (!tenant) throw notFound("tenant");
  await expireDueTrials(q, [tenantId]);
  return { tenant, current: await entitlementFind(q, tenantId, product) };
}

/** Retired products are not on sale: they cannot be requested, tried or granted. */
async function onSale(q: Queryable, key: string): Promise<StoredProduct> {
  const product = await productFind(q, key);
  if (!product || product.retired) throw notFound("product");
  return product;
}

function notCancelled(tenant: Tenant): void {
  if (tenant.status === "cancelled") throw conflict("the tenant is cancelled");
}

async function put(
  q: Queryable,
  tenantId: string,
  product: string,
  status: EntitlementStatus,
  trialDays: number | null,
  audit: (e: StoredEntitlement) => AuditInput,
): Promise<Entitlement> {
  const e = await entitlementPut(q, tenantId, product, status, trialDays);
  await auditInsert(q, [audit(e)]);
  await notifyVerifyChange(q, { tenant_id: tenantId });
  return toEntitlement(e);
}

export async function listEntitlements(q: Queryable, tenantId: string): Promise<Entitlement[]> {
  if (!(await tenantFindById(q, tenantId))) throw notFound("tenant");
  return entitlementListByTenant(q, tenantId);
}

/** POST /v1/catalog/request: -> requested, unless the tenant already has or is trying or asking for it. */
export async function requestProduct(q: Queryable, input: CatalogRequest, actor: Actor): Promise<Outcome<Entitlement>> {
  const { tenant, current } = await begin(q, input.tenant_id, input.product);
  await onSale(q, input.product);
  notCancelled(tenant);
  if (current && HELD.has(current.status)) return { value: toEntitlement(current), changed: false };
  const value = await put(q, tenant.id, input.product, "requested", null, () =>
    event(tenant.id, input.product, "entitlement.requested", actor, { from: current?.status ?? null }),
  );
  return { value, changed: true };
}

/** POST /v1/catalog/trial-request: -> trial for the product's trial_days; one trial per tenant and product, ever. */
export async function requestTrial(q: Queryable, input: CatalogRequest, actor: Actor): Promise<Outcome<Entitlement>> {
  const { tenant, current } = await begin(q, input.tenant_id, input.product);
  const product = await onSale(q, input.product);
  notCancelled(tenant);
  if (current?.status === "trial") return { value: toEntitlement(current), changed: false };
  if (product.trial_days === null) throw conflict(`product ${product.key} offers no trial`);
  if (current?.status === "active") throw conflict(`the tenant already has product ${product.key}`);
  if (current?.had_trial) throw conflict(`the tenant already had a trial of ${product.key}; a tenant gets one trial per product`);
  const value = await put(q, tenant.id, product.key, "trial", product.trial_days, (e) =>
    event(tenant.id, product.key, "entitlement.trial_started", actor, {
      from: current?.status ?? null,
      trial_days: product.trial_days,
      trial_ends_at: e.trial_ends_at,
    }),
  );
  return { value, changed: true };
}

/**
 * POST /v1/entitlements. Grant (active): from any status, 409 on a cancelled
 * tenant. Revoke (cancelled): from requested, trial or active; an expired or
 * cancelled entitlement is already not usable and stays as it is; 404 when
 * the tenant never had the product. `created` tells a new row from a change.
 */
export async function setEntitlement(
  q: Queryable,
  input: EntitlementChange,
  actor: Actor,
): Promise<Outcome<Entitlement> & { created: boolean }> {
  const { tenant, current } = await begin(q, input.tenant_id, input.product);
  const from = current?.status ?? null;
  if (input.status === "active") {
    await onSale(q, input.product);
    notCancelled(tenant);
    if (from === "active" && current) return { value: toEntitlement(current), changed: false, created: false };
    const value = await put(q, tenant.id, input.product, "active", null, () =>
      event(tenant.id, input.product, "entitlement.granted", actor, { from }),
    );
    return { value, changed: true, created: current === null };
  }
  if (!current) throw new AppError("not_found", `the tenant has no entitlement to ${input.product}`);
  if (!HELD.has(current.status)) return { value: toEntitlement(current), changed: false, created: false };
  const value = await put(q, tenant.id, input.product, "cancelled", null, () =>
    event(tenant.id, input.product, "entitlement.revoked", actor, { from }),
  );
  return { value, changed: true, created: false };
}

/**
 * Tenant activation and cancellation move the tenant's entitlements in the
 * same transaction (the caller holds the tenant row), one event each:
 * activation grants the requested ones; cancellation revokes the requested,
 * trial and active ones (trials that already ended stay expired). The
 * caller announces the tenant's change to the verify caches, which covers
 * these moves too.
 */
export async function moveOnTenantChange(q: Queryable, tenantId: string, change: "activated" | "cancelled", actor: Actor): Promise<number> {
  await expireDueTrials(q, [tenantId]);
  const [from, to, action]: [EntitlementStatus[], EntitlementStatus, string] =
    change === "activated"
      ? [["requested"], "active", "entitlement.granted"]
      : [["requested", "trial", "active"], "cancelled", "entitlement.revoked"];
  const moved = (await entitlementMoveAll(q, tenantId, from, to)).sort((a, b) => (a.product < b.product ? -1 : 1));
  if (moved.length === 0) return 0;
  await auditInsert(
    q,
    moved.map((m) => event(tenantId, m.product, action, actor, { from: m.from, cause: `tenant.${change}` })),
  );
  return moved.length;
}
