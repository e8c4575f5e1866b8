import type { Entitlement, EntitlementStatus } from "../schemas/entitlement.js";
import type { Queryable } from "./db.js";
import { iso, isoOrNull } from "./rows.js";

interface EntitlementRow {
  [k: string]: unknown;
  tenant_id: string;
  product: string;
  status: EntitlementStatus;
  trial_ends_at: Date | null;
  had_trial: boolean;
  created_at: Date;
  updated_at: Date;
}

/** An entitlement as the rules need it: the resource plus whether a trial was ever started. */
export interface StoredEntitlement extends Entitlement {
  had_trial: boolean;
}

/**
 * Every read goes through this projection: a trial past its end reads as
 * expired (and as changed at its end) the moment it ends, whether or not the
 * sweep has stored that yet. Once stored, the row reads the same.
 */
const DUE = "(e.status = 'trial' AND e.trial_ends_at <= now())";
const COLUMNS = `e.tenant_id, e.product,
  CASE WHEN ${DUE} THEN 'expired' ELSE e.status END AS status,
  e.trial_ends_at, e.trial_started_at IS NOT NULL AS had_trial, e.created_at,
  CASE WHEN ${DUE} THEN greatest(e.updated_at, e.trial_ends_at) ELSE e.updated_at END AS updated_at`;

/** The API shows milliseconds; storing the same keeps a shown trial end equal to the stored one. */
const NOW = "date_trunc('milliseconds', now())";

const toStored = (r: EntitlementRow): StoredEntitlement => ({
  tenant_id: r.tenant_id,
  product: r.product,
  status: r.status,
  trial_ends_at: isoOrNull(r.trial_ends_at),
  had_trial: r.had_trial,
  created_at: iso(r.created_at),
  updated_at: iso(r.updated_at),
});

/** The resource, without the internal fields. */
export const toEntitlement = ({ had_trial: _, ...e }: StoredEntitlement): Entitlement => e;

export async function entitlementListByTenant(q: Queryable, tenantId: string): Promise<Entitlement[]> {
  const rows = await q.query<EntitlementRow>(`SELECT ${COLUMNS} FROM entitlements e WHERE e.tenant_id = $1 ORDER BY e.product`, [tenantId]);
  return rows.map((r) => toEntitlement(toStored(r)));
}

export async function entitlementFind(q: Queryable, tenantId: string, product: string): Promise<StoredEntitlement | null> {
  const rows = await q.query<EntitlementRow>(`SELECT ${COLUMNS} FROM entitlements e WHERE e.tenant_id = $1 AND e.product = $2`, [
    tenantId,
    product,
  ]);
  return rows[0] ? toStored(rows[0]) : null;
}

/**
 * Creates the entitlement, or moves it to `status`. `trialDays` starts a
 * trial (ending that many days from now). Leaving a running trial for any
 * other status ends it now, so `trial_ends_at` always says when the trial
 * ended or will end. `trial_started_at` is set once and never cleared.
 */
export async function entitlementPut(
  q: Queryable,
  tenantId: string,
  product: string,
  status: EntitlementStatus,
  trialDays: number | null = null,
): Promise<StoredEntitlement> {
  const rows = await q.query<EntitlementRow>(
    `WITH v AS (
       SELECT ${NOW} AS now,
              CASE WHEN $4::integer IS NULL THEN NULL ELSE ${NOW} + make_interval(days => $4::integer) END AS trial_ends_at
     )
     INSERT INTO entitlements AS e (tenant_id, product, status, trial_ends_at, trial_started_at, created_at, updated_at)
     SELECT $1::uuid, $2::text, $3::text, v.trial_ends_at, CASE WHEN v.trial_ends_at IS NULL THEN NULL ELSE v.now END, v.now, v.now FROM v
     ON CONFLICT (tenant_id, product) DO UPDATE
        SET status = EXCLUDED.status,
            trial_ends_at = CASE WHEN EXCLUDED.trial_ends_at IS NOT NULL THEN EXCLUDED.trial_ends_at
                                 WHEN e.status = 'trial' THEN least(e.trial_ends_at, EXCLUDED.updated_at)
                                 ELSE e.trial_ends_at END,
            trial_started_at = coalesce(e.trial_started_at, EXCLUDED.trial_started_at),
            updated_at = EXCLUDED.updated_at
     RETURNING ${COLUMNS}`,
    [tenantId, product, status, trialDays],
  );
  return toStored(rows[0] as EntitlementRow);
}

/**
 * Moves every entitlement of the tenant that is in one of `from` to `to`
 * (tenant activation and cancellation). Returns what moved, from what.
 */
export async function entitlementMoveAll(
  q: Queryable,
  tenantId: string,
  from: readonly EntitlementStatus[],
  to: EntitlementStatus,
): Promise<{ product: string; from: EntitlementStatus }[]> {
  return q.query<{ product: string; from: EntitlementStatus }>(
    `WITH old AS (
       SELECT product, status FROM entitlements WHERE tenant_id = $1 AND status = ANY($2::text[]) FOR UPDATE
     )
     UPDATE entitlements AS e
        SET status = $3, updated_at = ${NOW},
            trial_ends_at = CASE WHEN e.status = 'trial' THEN least(e.trial_ends_at, ${NOW}) ELSE e.trial_ends_at END
       FROM old
      WHERE e.tenant_id = $1 AND e.product = old.product
     RETURNING e.product, old.status AS "from"`,
    [tenantId, from, to],
  );
}

/**
 * Stores `expired` for the given tenants' trials that have ended; returns
 * each one stored. The status test in the UPDATE makes this exactly-once:
 * a trial already stored as expired, by this or another instance, is not
 * returned again. `updated_at` becomes the trial's end, as reads showed it.
 */
export async function entitlementExpireDue(
  q: Queryable,
  tenantIds: readonly string[],
): Promise<{ tenant_id: string; product: string; trial_ends_at: Date }[]> {
  if (tenantIds.length === 0) return [];
  return q.query<{ tenant_id: string; product: string; trial_ends_at: Date }>(
    `UPDATE entitlements AS e SET status = 'expired', updated_at = greatest(e.updated_at, e.trial_ends_at)
      WHERE e.tenant_id = ANY($1::uuid[]) AND ${DUE}
     RETURNING e.tenant_id, e.product, e.trial_ends_at`,
    [tenantIds],
  );
}

/**
 * The sweep's claim: up to `limit` tenants that have an ended trial not yet
 * stored as expired, locked for this transaction. Tenants another
 * transaction holds (a request on that tenant, another instance's sweep)
 * are skipped, not waited for: they are taken next time, and lock order
 * (tenant, then its entitlements) stays the same as every other writer's.
 */
export async function tenantsWithDueTrialsLock(q: Queryable, limit: number): Promise<string[]> {
  const rows = await q.query<{ id: string }>(
    `SELECT t.id FROM tenants t
      WHERE EXISTS (SELECT 1 FROM entitlements e WHERE e.tenant_id = t.id AND ${DUE})
      LIMIT $1
        FOR NO KEY UPDATE OF t SKIP LOCKED`,
    [limit],
  );
  return rows.map((r) => r.id);
}
