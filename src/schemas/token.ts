import { type Static, Type } from "@sinclair/typebox";
import { ROLES } from "../domain/roles.js";
import { InputTimestamp, Nullable, StringEnum, Timestamp, TrimmedText, Uuid } from "./common.js";

// Glossary: a managed token is a bearer token for a service, a script or a
// person without SSO, kept in the store (as a SHA-256 digest) so that it is
// granted and withdrawn without a restart. Its name is its principal name,
// the audit actor of what it does. Bootstrap tokens (from the environment)
// are for bootstrap and break-glass.

export const TOKEN_NAME_PATTERN = "^[A-Za-z0-9_.@-]{1,100}$";
export const GRACE_MAX_SECONDS = 604_800;
export const GRACE_DEFAULT_SECONDS = 86_400;

export const ManagedToken = Type.Object(
  {
    id: Uuid,
    name: Type.String({ description: "The principal name: the audit actor_id of what the token does. Unique among live tokens." }),
    role: StringEnum(ROLES, { description: "What the token may do: admin, service or auditor." }),
    description: Nullable(Type.String({ description: "What the token is for." })),
    prefix: Type.String({ description: "`rt_` + the first 8 characters of the random part, so people can tell tokens apart." }),
    created_by: Type.String({ description: "The actor who created the token (or rotated its predecessor)." }),
    created_at: Timestamp,
    expires_at: Nullable(Type.String({ format: "date-time", description: "When the token stops working; null: never." })),
    last_used_at: Nullable(
      Type.String({ format: "date-time", description: "Last successful authentication; written at most about once a minute." }),
    ),
    revoked_at: Nullable(Type.String({ format: "date-time", description: "When the token was revoked; null: not revoked." })),
    rotated_to: Nullable(Type.String({ format: "uuid", description: "After a rotation: the id of the token that replaced this one." })),
    grace_ends_at: Nullable(
      Type.String({ format: "date-time", description: "After a rotation: when this token stops working (the end of the grace period)." }),
    ),
  },
  { $id: "ManagedToken", title: "ManagedToken", description: "A managed token, never with its secret or the secret's digest." },
);
export type ManagedToken = Static<typeof ManagedToken>;

export const ManagedTokenCreated = Type.Object(
  {
    ...ManagedToken.properties,
    token: Type.String({
      description: "The secret: `rt_` + 43 random base62 characters. Shown only in this response: store it now.",
    }),
  },
  { title: "ManagedTokenCreated", description: "A new token with its secret, shown this once." },
);
export type ManagedTokenCreated = Static<typeof ManagedTokenCreated>;

export const ManagedTokenCreate = Type.Object(
  {
    name: Type.String({
      pattern: TOKEN_NAME_PATTERN,
      description:
        "The principal name, 1-100 of A-Z a-z 0-9 _ . @ -: the audit actor_id of what the token does. Unique among live tokens and the bootstrap principals' names (409).",
    }),
    role: StringEnum(ROLES, { description: "admin, service or auditor." }),
    expires_at: Type.Optional(Nullable(InputTimestamp("When the token stops working; must lie in the future. Absent or null: never."))),
    description: Type.Optional(Nullable(TrimmedText(500, "What the token is for, 1-500 characters after trimming (stored trimmed)."))),
  },
  { additionalProperties: false, title: "ManagedTokenCreate" },
);
export type ManagedTokenCreate = Static<typeof ManagedTokenCreate>;

export const ManagedTokenRotate = Type.Object(
  {
    grace_seconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: GRACE_MAX_SECONDS,
        default: GRACE_DEFAULT_SECONDS,
        description: "How long the old token keeps working, 0-604800 seconds (7 days); default 86400 (a day). 0: it stops at once.",
      }),
    ),
  },
  { additionalProperties: false, title: "ManagedTokenRotate" },
);
export type ManagedTokenRotate = Static<typeof ManagedTokenRotate>;

export const ManagedTokenList = Type.Object(
  { tokens: Type.Array(Type.Ref(ManagedToken), { description: "Newest first, revoked and rotated tokens included." }) },
  { title: "ManagedTokenList" },
);
