import type { ManagedToken, ManagedTokenCreate, ManagedTokenCreated } from "../../schemas/token.js";
import { auditInsert } from "../../store/audit.js";
import type { Db, Queryable } from "../../store/db.js";
import {
  managedTokenFindByIdForUpdate,
  managedTokenInsert,
  managedTokenLiveWithName,
  managedTokenLockName,
  managedTokenRetire,
  managedTokenRevoke,
} from "../../store/managed-tokens.js";
import { notifyAccessChange } from "../../store/notify.js";
import { type Actor, auditActor } from "../actor.js";
import { conflict, invalid, notFound } from "../errors.js";
import type { Outcome } from "../outcome.js";
import { newTokenSecret, type TokenSecret } from "./token-secret.js";

const target = (id: string) => ({ tenant_id: null, target_type: "token", target_id: id });

/**
 * Draws a token and stores its digest with its token.created event. The
 * plaintext is returned to the caller once and goes nowhere else: not to
 * the audit metadata, not to a log. `bootstrapNames` are the environment's
 * principals: a managed token may not take one of their names.
 */
export async function createToken(
  db: Db,
  input: ManagedTokenCreate,
  actor: Actor,
  bootstrapNames: ReadonlySet<string>,
  draw: () => TokenSecret = newTokenSecret,
): Promise<ManagedTokenCreated> {
  const expiresAt = input.expires_at ?? null;
  if (expiresAt !== null && Date.parse(expiresAt) <= Date.now()) throw invalid("body/expires_at", "must lie in the future");
  if (bootstrapNames.has(input.name)) throw conflict(`the name "${input.name}" belongs to a bootstrap principal`);
  const secret = draw();
  const created = await db.tx(async (q) => {
    await managedTokenLockName(q, input.name);
    if (await managedTokenLiveWithName(q, input.name)) throw conflict(`a live token is already named "${input.name}"`);
    const token = await managedTokenInsert(q, {
      name: input.name,
      role: input.role,
      description: input.description?.trim() ?? null,
      prefix: secret.prefix,
      digest: secret.digest,
      created_by: actor.actorId,
      expires_at: expiresAt,
    });
    const metadata = { name: token.name, role: token.role, prefix: token.prefix, expires_at: token.expires_at };
    await auditInsert(q, [{ ...target(token.id), action: "token.created", ...auditActor(actor, metadata) }]);
    return token;
  });
  return { ...created, token: secret.token };
}

/** Revoked tokens stay listed; revoking again changes nothing (no audit). Every instance drops the token from its cache. */
export async function revokeToken(q: Queryable, id: string, actor: Actor): Promise<Outcome<ManagedToken>> {
  const before = await managedTokenFindByIdForUpdate(q, id);
  if (!before) throw notFound("token");
  if (before.revoked_at !== null) return { value: before, changed: false };
  const token = await managedTokenRevoke(q, id);
  await auditInsert(q, [{ ...target(id), action: "token.revoked", ...auditActor(actor, { name: token.name, prefix: token.prefix }) }]);
  await notifyAccessChange(q, { token_id: id });
  return { value: token, changed: true };
}

/**
 * A new token with the old one's name, role, description and expiry; the
 * old one keeps working for `graceSeconds`, then stops on every instance
 * (checked against the clock on each request; the notification makes every
 * instance forget what it cached about the old token at once).
 */
export async function rotateToken(
  db: Db,
  id: string,
  graceSeconds: number,
  actor: Actor,
  draw = newTokenSecret,
): Promise<ManagedTokenCreated> {
  const secret = draw();
  const created = await db.tx(async (q) => {
    const old = await managedTokenFindByIdForUpdate(q, id);
    if (!old) throw notFound("token");
    if (old.revoked_at !== null) throw conflict("a revoked token cannot be rotated");
    if (old.rotated_to !== null) throw conflict(`the token was already rotated; rotate its successor ${old.rotated_to}`);
    if (old.expires_at !== null && Date.parse(old.expires_at) <= Date.now()) throw conflict("an expired token cannot be rotated");
    await managedTokenLockName(q, old.name);
    const token = await managedTokenInsert(q, {
      name: old.name,
      role: old.role,
      description: old.description,
      prefix: secret.prefix,
      digest: secret.digest,
      created_by: actor.actorId,
      expires_at: old.expires_at,
    });
    const retired = await managedTokenRetire(q, id, token.id, graceSeconds);
    const metadata = {
      name: old.name,
      prefix: old.prefix,
      rotated_to: token.id,
      new_prefix: token.prefix,
      grace_ends_at: retired.grace_ends_at,
    };
    await auditInsert(q, [{ ...target(id), action: "token.rotated", ...auditActor(actor, metadata) }]);
    await notifyAccessChange(q, { token_id: id });
    return token;
  });
  return { ...created, token: secret.token };
}
