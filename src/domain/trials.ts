import { auditInsert } from "../store/audit.js";
import type { Db, Queryable } from "../store/db.js";
import { entitlementExpireDue, tenantsWithDueTrialsLock } from "../store/entitlements.js";
import { notifyVerifyChange } from "../store/notify.js";
import { auditActor, SYSTEM_ACTOR } from "./actor.js";

/**
 * Stores `expired` for the ended trials of tenants whose rows the caller has
 * locked, with one `entitlement.trial_expired` event each (occurred at the
 * trial's end, written by `system`). Entitlement operations call it first,
 * so the rules after it see stored status = effective status; the sweep
 * calls it for the tenants it claimed. Returns how many trials it expired.
 */
export async function expireDueTrials(q: Queryable, tenantIds: readonly string[]): Promise<number> {
  const expired = await entitlementExpireDue(q, tenantIds);
  if (expired.length === 0) return 0;
  await auditInsert(
    q,
    expired.map((e) => ({
      tenant_id: e.tenant_id,
      product: e.product,
      target_type: "entitlement",
      target_id: e.product,
      action: "entitlement.trial_expired",
      occurred_at: e.trial_ends_at.toISOString(),
      ...auditActor(SYSTEM_ACTOR, { from: "trial", trial_ends_at: e.trial_ends_at.toISOString() }),
    })),
  );
  for (const tenantId of new Set(expired.map((e) => e.tenant_id))) await notifyVerifyChange(q, { tenant_id: tenantId });
  return expired.length;
}

export interface SweepOptions {
  /** Tenants claimed per transaction. */
  batch?: number;
  /** Bound on transactions per sweep; what is left waits for the next one. */
  maxBatches?: number;
}

/**
 * One sweep: claims tenants with ended trials in batches (skipping tenants
 * locked elsewhere) and expires their trials. Safe to run on every instance
 * at once: each trial is expired, and its event written, exactly once.
 */
export async function sweepExpiredTrials(db: Db, { batch = 200, maxBatches = 50 }: SweepOptions = {}): Promise<number> {
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const { claimed, expired } = await db.tx(async (q) => {
      const ids = await tenantsWithDueTrialsLock(q, batch);
      return { claimed: ids.length, expired: await expireDueTrials(q, ids) };
    });
    total += expired;
    if (claimed < batch) break;
  }
  return total;
}
