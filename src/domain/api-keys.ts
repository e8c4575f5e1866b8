import type { ApiKey, ApiKeyCreate, ApiKeyCreated } from "../schemas/api-key.js";
import { type ApiKeyInsert, apiKeyFindByIdForUpdate, apiKeyInsert, apiKeyProductAvailable, apiKeyRevoke } from "../store/api-keys.js";
import { auditInsert } from "../store/audit.js";
import type { Db, Queryable } from "../store/db.js";
import { notifyVerifyChange } from "../store/notify.js";
import { tenantFindByIdForUpdate } from "../store/tenants.js";
import { type Actor, auditActor } from "./actor.js";
import { AppError, conflict, notFound } from "./errors.js";
import type { KeyHasher } from "./key-hash.js";
import { type KeyMaterial, newKeyMaterial } from "./key-material.js";
import type { Outcome } from "./outcome.js";

/** Prefixes are 48 random bits: a second collision in a row means something is wrong, not unlucky. */
const MAX_DRAWS = 3;

const target = (k: ApiKey) => ({ tenant_id: k.tenant_id, product: k.product, target_type: "api_key", target_id: k.id });

/**
 * Draws a key, hashes it (before the transaction: 15 ms of argon2 should
 * not hold the tenant's row lock), then stores it with its audit event.
 * The plaintext is returned to the caller once and goes nowhere else.
 */
export async function createApiKey(
  db: Db,
  hasher: KeyHasher,
  input: ApiKeyCreate,
  actor: Actor,
  draw: () => KeyMaterial = newKeyMaterial,
): Promise<ApiKeyCreated> {
  const expiresAt = input.expires_at ?? null;
  if (expiresAt !== null && Date.parse(expiresAt) <= Date.now()) {
    throw new AppError("invalid_input", "expires_at must lie in the future", {
      errors: [{ field: "body/expires_at", message: "must lie in the future" }],
    });
  }
  for (let i = 0; i < MAX_DRAWS; i++) {
    const { key, prefix } = draw();
    // Creates take their turn as a group of their own: a tenant's verify flood cannot crowd them out.
    const hash = await hasher.hash(key, "create");
    const row: ApiKeyInsert = {
      tenant_id: input.tenant_id,
      product: input.product ?? null,
      name: input.name.trim(),
      scopes: input.scopes ?? [],
      prefix,
      hash,
      created_by: actor.actorId,
      expires_at: expiresAt,
    };
    const created = await db.tx((q) => insertApiKey(q, row, actor));
    if (created) return { ...created, key };
  }
  throw new AppError("internal", "could not draw an unused API key prefix");
}

/** null when the prefix is taken. */
async function insertApiKey(q: Queryable, row: ApiKeyInsert, actor: Actor): Promise<ApiKey | null> {
  const tenant = await tenantFindByIdForUpdate(q, row.tenant_id);
  if (!tenant) throw notFound("tenant");
  if (tenant.status === "cancelled") throw conflict("a cancelled tenant cannot get new API keys");
  if (row.product !== null && !(await apiKeyProductAvailable(q, row.product))) throw notFound("product");
  const key = await apiKeyInsert(q, row);
  if (!key) return null;
  const metadata = { name: key.name, prefix: key.prefix, scopes: key.scopes, expires_at: key.expires_at };
  await auditInsert(q, [{ ...target(key), action: "api_key.created", ...auditActor(actor, metadata) }]);
  return key;
}

/** Revoked keys stay listed; revoking again changes nothing (no audit). Every instance drops the key from its cache. */
export async function revokeApiKey(q: Queryable, id: string, actor: Actor): Promise<Outcome<ApiKey>> {
  const before = await apiKeyFindByIdForUpdate(q, id);
  if (!before) throw notFound("API key");
  if (before.revoked_at !== null) return { value: before, changed: false };
  const key = await apiKeyRevoke(q, id);
  await auditInsert(q, [{ ...target(key), action: "api_key.revoked", ...auditActor(actor, { name: key.name, prefix: key.prefix }) }]);
  await notifyVerifyChange(q, { key_id: id });
  return { value: key, changed: true };
}
