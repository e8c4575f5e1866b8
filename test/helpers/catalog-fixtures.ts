import type { Queryable } from "../../src/store/db.js";
import { notifyVerifyChange } from "../../src/store/notify.js";
import type { TestDb } from "./db.js";

/**
 * Products and entitlements by plain SQL, for suites that need them before
 * (or without) the catalog and entitlements API. An entitlement change
 * notifies verify caches, as the entitlements API does.
 */
export async function ensureProduct(q: Queryable, key: string, opts: { trialDays?: number | null; retired?: boolean } = {}): Promise<void> {
  await q.query(
    `INSERT INTO products (key, name, trial_days, retired_at) VALUES ($1, $1, $2, CASE WHEN $3::boolean THEN now() END)
     ON CONFLICT (key) DO NOTHING`,
    [key, opts.trialDays ?? null, opts.retired ?? false],
  );
}

export async function setEntitlement(
  store: TestDb,
  tenantId: string,
  product: string,
  status: "requested" | "trial" | "active" | "cancelled" | "expired",
  trialEndsAt: Date | null = null,
): Promise<void> {
  await store.db.tx(async (q) => {
    await q.query(
      `INSERT INTO entitlements (tenant_id, product, status, trial_ends_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant_id, product) DO UPDATE SET status = excluded.status, trial_ends_at = excluded.trial_ends_at, updated_at = now()`,
      [tenantId, product, status, trialEndsAt?.toISOString() ?? null],
    );
    await notifyVerifyChange(q, { tenant_id: tenantId });
  });
}
