import type { Queryable } from "./db.js";

/**
 * Verify answers are cached in every instance. Any change that can flip one
 * (a key revoked, a tenant cancelled, an entitlement changed) announces
 * itself on this channel from inside its transaction; PostgreSQL delivers
 * the notification to every listening instance when, and only if, the
 * transaction commits.
 */
export const VERIFY_CHANNEL = "tenant_registry_verify";

export type VerifyChange = { tenant_id: string } | { key_id: string };

/** The sending instance's own caches hear it at commit, without the round trip (see `Queryable.notify`). */
export async function notifyVerifyChange(q: Queryable, change: VerifyChange): Promise<void> {
  await notify(q, VERIFY_CHANNEL, JSON.stringify(change));
}

/**
 * Authentication's caches (managed tokens; sessions and people) hear on this
 * channel of every change that can end a credential: a revoke, a rotation
 * (its grace may be 0). Expiry and grace end need no notification: they are
 * checked against the clock on every request.
 */
export const ACCESS_CHANNEL = "tenant_registry_access";

export type AccessChange = { token_id: string };

export async function notifyAccessChange(q: Queryable, change: AccessChange): Promise<void> {
  await notify(q, ACCESS_CHANNEL, JSON.stringify(change));
}

export async function notify(q: Queryable, channel: string, payload: string): Promise<void> {
  if (q.notify) await q.notify(channel, payload);
  else await q.query("SELECT pg_notify($1, $2)", [channel, payload]);
}
