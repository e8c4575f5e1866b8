import type { EntitlementFacts, KeyFacts, TenantFacts } from "../domain/verify-rules.js";
import type { Queryable } from "./db.js";
import { isoOrNull } from "./rows.js";

/** The reads behind an uncached verify; every one is a primary-key or unique-index lookup. */

interface KeyRow {
  [k: string]: unknown;
  id: string;
  tenant_id: string;
  product: string | null;
  scopes: string[];
  expires_at: Date | null;
  revoked_at: Date | null;
}

const KEY_COLUMNS = "id, tenant_id, product, scopes, expires_at, revoked_at";

// Frozen: the verify route keeps each answer's serialized form, made once per answer object.
const toFacts = (r: KeyRow): KeyFacts => {
  const scopes = Object.freeze([...r.scopes]) as string[];
  return {
    id: r.id,
    tenant_id: r.tenant_id,
    product: r.product,
    scopes,
    expiresAt: r.expires_at === null ? null : r.expires_at.getTime(),
    revoked: r.revoked_at !== null,
    valid: Object.freeze({
      valid: true,
      key_id: r.id,
      tenant_id: r.tenant_id,
      product: r.product,
      scopes,
      expires_at: isoOrNull(r.expires_at),
    }),
  };
};

export interface KeyCandidate {
  facts: KeyFacts;
  hash: string;
}

/** The keys presented plaintexts may be, by prefix (api_keys_prefix_key), with their stored hashes. */
export async function verifyKeysByPrefix(q: Queryable, prefixes: readonly string[]): Promise<Map<string, KeyCandidate>> {
  const rows = await q.query<KeyRow & { prefix: string; hash: string }>(
    `SELECT ${KEY_COLUMNS}, prefix, hash FROM api_keys WHERE prefix = ANY($1::text[])`,
    [prefixes],
  );
  return new Map(rows.map((r) => [r.prefix, { facts: toFacts(r), hash: r.hash }]));
}

export async function verifyKeyById(q: Queryable, id: string): Promise<KeyFacts | null> {
  const rows = await q.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = $1`, [id]);
  return rows[0] ? toFacts(rows[0]) : null;
}

/** A tenant's status and every entitlement it has, whatever its status. */
export async function verifyTenant(q: Queryable, tenantId: string): Promise<TenantFacts | null> {
  const rows = await q.query<{ id: string; status: string; entitlements: [string, string, number | null][] }>(
    `SELECT t.id, t.status,
            coalesce((SELECT jsonb_agg(jsonb_build_array(e.product, e.status, (extract(epoch FROM e.trial_ends_at) * 1000)::float8))
                        FROM entitlements e WHERE e.tenant_id = t.id), '[]') AS entitlements
       FROM tenants t WHERE t.id = $1`,
    [tenantId],
  );
  const r = rows[0];
  if (!r) return null;
  const entitlements = new Map<string, EntitlementFacts>();
  for (const [product, status, trialEndsAt] of r.entitlements) entitlements.set(product, { status, trialEndsAt });
  return { id: r.id, status: r.status, entitlements };
}
