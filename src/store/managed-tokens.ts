import type { ManagedToken } from "../schemas/token.js";
import type { Queryable } from "./db.js";
import { iso, isoOrNull } from "./rows.js";

interface ManagedTokenRow {
  [k: string]: unknown;
  id: string;
  name: string;
  role: ManagedToken["role"];
  description: string | null;
  prefix: string;
  created_by: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
  rotated_to: string | null;
  grace_ends_at: Date | null;
}

// Never the digest: nothing that lists or returns tokens can leak it.
const COLUMNS =
  "id, name, role, description, prefix, created_by, created_at, expires_at, last_used_at, revoked_at, rotated_to, grace_ends_at";

const toToken = (r: ManagedTokenRow): ManagedToken => ({
  id: r.id,
  name: r.name,
  role: r.role,
  description: r.description,
  prefix: r.prefix,
  created_by: r.created_by,
  created_at: iso(r.created_at),
  expires_at: isoOrNull(r.expires_at),
  last_used_at: isoOrNull(r.last_used_at),
  revoked_at: isoOrNull(r.revoked_at),
  rotated_to: r.rotated_to,
  grace_ends_at: isoOrNull(r.grace_ends_at),
});

export interface ManagedTokenInsert {
  name: string;
  role: ManagedToken["role"];
  description: string | null;
  prefix: string;
  digest: string;
  created_by: string;
  expires_at: string | null;
}

/** Timestamps are stored to the millisecond, as the API shows them. */
export async function managedTokenInsert(q: Queryable, t: ManagedTokenInsert): Promise<ManagedToken> {
  const [row] = await q.query<ManagedTokenRow>(
    `INSERT INTO managed_tokens (name, role, description, prefix, token_digest, created_by, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, date_trunc('milliseconds', now()), date_trunc('milliseconds', $7::timestamptz))
     RETURNING ${COLUMNS}`,
    [t.name, t.role, t.description, t.prefix, t.digest, t.created_by, t.expires_at],
  );
  if (!row) throw new Error("INSERT ... RETURNING returned no row");
  return toToken(row);
}

/**
 * Serialises creates (and rotations) of one name until the transaction
 * ends, so that two at once cannot both find the name free.
 */
export async function managedTokenLockName(q: Queryable, name: string): Promise<void> {
  await q.query("SELECT pg_advisory_xact_lock(hashtext('managed_token_name'), hashtext($1))", [name]);
}

/** Whether a live token (not revoked, not rotated out, not expired) has this name. */
export async function managedTokenLiveWithName(q: Queryable, name: string): Promise<boolean> {
  const rows = await q.query(
    `SELECT 1 FROM managed_tokens
      WHERE name = $1 AND revoked_at IS NULL AND rotated_to IS NULL AND (expires_at IS NULL OR expires_at > now())
      LIMIT 1`,
    [name],
  );
  return rows.length > 0;
}

export async function managedTokenList(q: Queryable): Promise<ManagedToken[]> {
  const rows = await q.query<ManagedTokenRow>(`SELECT ${COLUMNS} FROM managed_tokens ORDER BY created_at DESC, id DESC`);
  return rows.map(toToken);
}

export async function managedTokenFindById(q: Queryable, id: string): Promise<ManagedToken | null> {
  const [row] = await q.query<ManagedTokenRow>(`SELECT ${COLUMNS} FROM managed_tokens WHERE id = $1`, [id]);
  return row ? toToken(row) : null;
}

export async function managedTokenFindByIdForUpdate(q: Queryable, id: string): Promise<ManagedToken | null> {
  const [row] = await q.query<ManagedTokenRow>(`SELECT ${COLUMNS} FROM managed_tokens WHERE id = $1 FOR UPDATE`, [id]);
  return row ? toToken(row) : null;
}

export async function managedTokenRevoke(q: Queryable, id: string): Promise<ManagedToken> {
  const [row] = await q.query<ManagedTokenRow>(
    `UPDATE managed_tokens SET revoked_at = date_trunc('milliseconds', now()) WHERE id = $1 RETURNING ${COLUMNS}`,
    [id],
  );
  if (!row) throw new Error("managed token vanished under its row lock");
  return toToken(row);
}

/** Marks `id` as replaced by `successor`; it keeps working `graceSeconds` more. */
export async function managedTokenRetire(q: Queryable, id: string, successor: string, graceSeconds: number): Promise<ManagedToken> {
  const [row] = await q.query<ManagedTokenRow>(
    `UPDATE managed_tokens
        SET rotated_to = $2, grace_ends_at = date_trunc('milliseconds', now()) + make_interval(secs => $3)
      WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, successor, graceSeconds],
  );
  if (!row) throw new Error("managed token vanished under its row lock");
  return toToken(row);
}

/** What authentication needs to know about a token, by the digest of its secret. */
export interface ManagedTokenFacts {
  id: string;
  name: string;
  role: ManagedToken["role"];
  expires_at: Date | null;
  revoked_at: Date | null;
  grace_ends_at: Date | null;
}

export async function managedTokenFindByDigest(q: Queryable, digest: string): Promise<ManagedTokenFacts | null> {
  const [row] = await q.query<ManagedTokenFacts & Record<string, unknown>>(
    "SELECT id, name, role, expires_at, revoked_at, grace_ends_at FROM managed_tokens WHERE token_digest = $1",
    [digest],
  );
  return row ?? null;
}

export async function managedTokensTouch(q: Queryable, uses: readonly { id: string; at: string }[]): Promise<void> {
  if (uses.length === 0) return;
  await q.query(
    `UPDATE managed_tokens AS t SET last_used_at = u.at
       FROM (SELECT * FROM unnest($1::uuid[], $2::timestamptz[]) AS x(id, at)) AS u
      WHERE t.id = u.id AND (t.last_used_at IS NULL OR t.last_used_at < u.at)`,
    [uses.map((u) => u.id), uses.map((u) => u.at)],
  );
}
