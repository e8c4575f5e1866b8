import { type Static, Type } from "@sinclair/typebox";
import { productKey } from "./catalog.js";
import { Cursor, InputTimestamp, limitParam, NextCursor, Nullable, StringEnum, Timestamp, TrimmedText, Uuid } from "./common.js";

// Glossary: an API key lets a tenant call the products. Products ask the
// registry whether a presented key is good (verify) on every request; the
// registry keeps only the key's prefix and an argon2id hash of it.

const Scope = Type.String({
  pattern: "^[\\x21-\\x7e]{1,100}$",
  description: "A permission the key holds: 1-100 printable ASCII characters, no spaces. Compared exactly.",
});

export const ApiKey = Type.Object(
  {
    id: Uuid,
    tenant_id: Uuid,
    product: Nullable(Type.String({ description: "The one product the key is for; null: every product." })),
    name: Type.String({ description: "What the key is for." }),
    scopes: Type.Array(Type.String(), { description: "Permissions the key holds." }),
    prefix: Type.String({ description: "`bp_` + the first 8 characters of the key, so people can tell keys apart." }),
    created_by: Type.String({ description: "The actor who created the key." }),
    created_at: Timestamp,
    expires_at: Nullable(Timestamp),
    last_used_at: Nullable(
      Type.String({ format: "date-time", description: "Last successful verify; written at most about once a minute." }),
    ),
    revoked_at: Nullable(Timestamp),
  },
  { $id: "ApiKey", title: "ApiKey" },
);
export type ApiKey = Static<typeof ApiKey>;

export const ApiKeyCreated = Type.Object(
  {
    ...ApiKey.properties,
    key: Type.String({ description: "The plaintext key. Shown only in this response: store it now." }),
  },
  { title: "ApiKeyCreated" },
);
export type ApiKeyCreated = Static<typeof ApiKeyCreated>;

export const ApiKeyCreate = Type.Object(
  {
    tenant_id: Uuid,
    name: TrimmedText(200, "What the key is for, 1-200 chars after trimming (stored trimmed)."),
    product: Type.Optional(Nullable(productKey("Restrict the key to one catalog product; null or absent: every product."))),
    scopes: Type.Optional(Type.Array(Scope, { maxItems: 50, uniqueItems: true, description: "At most 50, no duplicates." })),
    expires_at: Type.Optional(Nullable(InputTimestamp("When the key stops verifying; must lie in the future."))),
  },
  { additionalProperties: false },
);
export type ApiKeyCreate = Static<typeof ApiKeyCreate>;

export const ApiKeyListQuery = Type.Object(
  {
    tenant_id: Uuid,
    limit: limitParam(50, 200),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
export type ApiKeyListQuery = Static<typeof ApiKeyListQuery>;

export const ApiKeyList = Type.Object({ api_keys: Type.Array(Type.Ref(ApiKey)), next_cursor: NextCursor });

export const VerifyRequest = Type.Object(
  {
    key: Type.String({ description: "The key as presented to the product." }),
    product: Type.Optional(Type.String({ description: "The product asking: the key must be for it and the tenant entitled to it." })),
    scope: Type.Optional(Type.String({ description: "A scope the key must hold." })),
  },
  { additionalProperties: false },
);
export type VerifyRequest = Static<typeof VerifyRequest>;

/** Why a key does not verify: the first failing condition, in this order. */
export const VERIFY_REASONS = [
  "malformed",
  "not_found",
  "revoked",
  "expired",
  "tenant_cancelled",
  "product_mismatch",
  "not_entitled",
  "insufficient_scope",
] as const;
export type VerifyReason = (typeof VERIFY_REASONS)[number];

export const VerifyValid = Type.Object(
  {
    valid: Type.Literal(true),
    key_id: Uuid,
    tenant_id: Uuid,
    product: Nullable(Type.String({ description: "The key's product; null: every product." })),
    scopes: Type.Array(Type.String()),
    expires_at: Nullable(Timestamp),
  },
  { title: "VerifyValid" },
);
export const VerifyInvalid = Type.Object(
  { valid: Type.Literal(false), reason: StringEnum(VERIFY_REASONS, { description: "The first condition the key failed." }) },
  { title: "VerifyInvalid" },
);
export const VerifyResult = Type.Union([VerifyValid, VerifyInvalid]);
export type VerifyResult = Static<typeof VerifyResult>;
