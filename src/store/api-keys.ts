import type { ApiKey } from "../schemas/api-key.js";
import type { Queryable } from "./db.js";
import { iso, isoOrNull } from "./rows.js";

interface ApiKeyRow {
  [k: string]: unknown;
  id: string;
  tenant_id: string;
  product: string | null;
  name: string;
  scopes: string[];
  prefix: string;
  created_by: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

// Never the hash: nothing that lists or returns keys can leak it.
const COLUMNS = "id, tenant_id, product, name, scopes, prefix, created_by, created_at, expires_at, last_used_at, revoked_at";

const toApiKey = (r: ApiKeyRow): ApiKey => ({
  id: r.id,
  tenant_id: r.tenant_id,
  product: r.product,
  name: r.name,
  scopes: r.scopes,
  prefix: r.prefix,
  created_by: r.created_by,
  created_at: iso(r.created_at),
  expires_at: isoOrNull(r.expires_at),
  last_used_at: isoOrNull(r.last_used_at),
  revoked_at: isoOrNull(r.revoked_at),
});

export interface ApiKeyInsert {
  tenant_id: string;
  product: string | null;
  name: string;
  scopes: string[];
  prefix: string;
  hash: string;
  created_by: string;
  expires_at: string | null;
}

/**
 * Returns null when the prefix is taken (the caller draws a new key).
 * Timestamps are stored to the millisecond: the API shows milliseconds and
 * the list cursor carries created_at, so stored and shown values must agree.
 */
export async function apiKeyInsert(q: Queryable, k: ApiKeyInsert): Promise<ApiKey | null> {
  const rows = await q.query<ApiKeyRow>(
    `INSERT INTO api_keys (tenant_id, product, name, scopes, prefix, hash, created_by, created_at, expires_at)
     VALUES ($1, $2, $3, $4::text[], $5, $6, $7, date_trunc('milliseconds', now()), date_trunc('milliseconds', $8::timestamptz))
     ON CONFLICT ON CONSTRAINT api_keys_prefix_key DO NOTHING
     RETURNING ${COLUMNS}`,
    [k.tenant_id, k.product, k.name, k.scopes, k.prefix, k.hash, k.created_by, k.expires_at],
  );
  return rows[0] ? toApiKey(rows[0]) : null;
}

/** Whether a key may be made for this product: it exists and is not retired. */
export async function apiKeyProductAvailable(q: Queryable, product: string): Promise<boolean> {
  const rows = await q.query("SELECT 1 FROM products WHERE key = $1 AND retired_at IS NULL", [product]);
  return rows.length > 0;
}

/** Locks the row until the transaction ends: revokes serialise on it. */
export async function apiKeyFindByIdForUpdate(q: Queryable, id: string): Promise<ApiKey | null> {
  const rows = await q.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE`, [id]);
  return rows[0] ? toApiKey(rows[0]) : null;
}

export async function apiKeyRevoke(q: Queryable, id: string): Promise<ApiKey> {
  const rows = await q.query<ApiKeyRow>(
    `UPDATE api_keys SET revoked_at = date_trunc('milliseconds', now()) WHERE id = $1 RETURNING ${COLUMNS}`,
    [id],
  );
  return toApiKey(rows[0] as ApiKeyRow);
}

export interface ApiKeyFilter {
  tenantId: string;
  /** Keyset: rows strictly older than this (created_at, id). */
  before?: { createdAt: string; id: string };
  limit: number;
}

/** Newest first, revoked included (api_keys_tenant_created_idx). */
export async function apiKeyList(q: Queryable, f: ApiKeyFilter): Promise<ApiKey[]> {
  const values: unknown[] = [f.tenantId, f.limit];
  let after = "";
  if (f.before) {
    values.push(f.before.createdAt, f.before.id);
    after = "AND (created_at, id) < ($3::timestamptz, $4::uuid)";
  }
  const rows = await q.query<ApiKeyRow>(
    `SELECT ${COLUMNS} FROM api_keys WHERE tenant_id = $1 ${after} ORDER BY created_at DESC, id DESC LIMIT $2`,
    values,
  );
  return rows.map(toApiKey);
}

/**
 * One statement for a batch of uses. Never moves last_used_at backwards, so
 * instances flushing in any order agree.
 */
export async function apiKeysTouch(q: Queryable, uses: readonly { id: string; at: string }[]): Promise<void> {
  if (uses.length === 0) return;
  await q.query(
    `UPDATE api_keys AS k SET last_used_at = u.at
       FROM (SELECT * FROM unnest($1::uuid[], $2::timestamptz[]) AS x(id, at)) AS u
      WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`,
    [uses.map((u) => u.id), uses.map((u) => u.at)],
  );
}
