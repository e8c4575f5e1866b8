import { type Static, Type } from "@sinclair/typebox";
import { ProductKey } from "./catalog.js";
import { Cursor, InputTimestamp, limitParam, NextCursor, Nullable, Timestamp, Uuid } from "./common.js";

// Glossary: an audit event records one thing that happened, to a tenant or
// in a product. The registry writes its own (tenant.created, ...) in the same
// transaction as the change; products append theirs through POST /v1/audit.

export const AUDIT_ACTION_PATTERN = "^[a-z][a-z0-9_.:-]{0,99}$";
/** Serialized (compact JSON, UTF-8) size limit of an event's metadata. */
export const AUDIT_METADATA_MAX_BYTES = 16 * 1024;
export const AUDIT_BATCH_MAX = 1000;
/**
 * How deep an event's metadata may nest: the metadata object is level 1,
 * and objects or arrays may sit at most this many levels deep. Checked
 * before storing (and by a CHECK constraint, 0005_audit_metadata_depth.sql)
 * so that every stored event can be serialized and read back.
 */
export const AUDIT_METADATA_MAX_DEPTH = 32;

/** The registry's own actions (SPEC, "Audit event"); products cannot post them. */
export const REGISTRY_ACTIONS = [
  "tenant.created",
  "tenant.updated",
  "tenant.activated",
  "tenant.cancelled",
  "entitlement.requested",
  "entitlement.trial_started",
  "entitlement.trial_expired",
  "entitlement.granted",
  "entitlement.revoked",
  "api_key.created",
  "api_key.revoked",
  "token.created",
  "token.rotated",
  "token.revoked",
] as const;
/** Action prefixes reserved for the registry: POST /v1/audit and /v1/audit/batch refuse them. */
export const RESERVED_ACTION_PREFIXES = [
  "tenant.",
  "entitlement.",
  "api_key.",
  "webhook.",
  "catalog.",
  "token.",
  "session.",
  "person.",
] as const;

/** True when an action belongs to the registry and may not come from the HTTP API. */
export const isReservedAction = (action: string): boolean =>
  (REGISTRY_ACTIONS as readonly string[]).includes(action) || RESERVED_ACTION_PREFIXES.some((p) => action.startsWith(p));

export const AuditEvent = Type.Object(
  {
    id: Type.String({ pattern: "^[0-9]+$", description: "Ascending 64-bit id, as a decimal string." }),
    tenant_id: Nullable(Uuid),
    product: Nullable(Type.String()),
    actor_id: Type.String({ description: "Who acted: the principal, X-Actor-Id, or the event's own actor_id." }),
    action: Type.String({ description: "What happened, e.g. tenant.created." }),
    target_type: Nullable(Type.String()),
    target_id: Nullable(Type.String()),
    metadata: Type.Record(Type.String(), Type.Unknown(), { description: "Free-form JSON object, at most 16 KiB." }),
    occurred_at: Timestamp,
    created_at: Timestamp,
  },
  { $id: "AuditEvent", title: "AuditEvent" },
);
export type AuditEvent = Static<typeof AuditEvent>;

const Action = Type.String({
  pattern: AUDIT_ACTION_PATTERN,
  description:
    "What happened: a lowercase letter, then up to 99 of [a-z0-9_.:-], e.g. `report.exported`. The registry's own actions and the prefixes `tenant.`, `entitlement.`, `api_key.`, `webhook.`, `catalog.`, `token.`, `session.` and `person.` are reserved: posting them is a 400.",
  examples: ["report.exported"],
});
const ACTOR_ID = {
  minLength: 1,
  maxLength: 200,
  // No control characters (C0, DEL, C1: what \p{Cc} means, spelled so that
  // regex engines without Unicode properties compile it), no leading or
  // trailing white space.
  pattern: "^[^\\x00-\\x1F\\x7F-\\x9F\\s](?:[^\\x00-\\x1F\\x7F-\\x9F]*[^\\x00-\\x1F\\x7F-\\x9F\\s])?$",
};
const ActorId = (description: string) => Type.String({ ...ACTOR_ID, description });
const At = InputTimestamp;
const Label = (description: string) => Type.String({ minLength: 1, maxLength: 200, description });

export const AuditEventCreate = Type.Object(
  {
    action: Action,
    tenant_id: Type.Optional(Nullable(Uuid)),
    product: Type.Optional(Nullable(ProductKey)),
    actor_id: Type.Optional(
      ActorId(
        "Who acted, e.g. a product's user. Defaults to X-Actor-Id, else the calling principal; when it differs from the principal, `metadata.principal` records the principal.",
      ),
    ),
    target_type: Type.Optional(Nullable(Label("What kind of thing was acted on."))),
    target_id: Type.Optional(Nullable(Label("Which thing was acted on."))),
    metadata: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description:
          "A JSON object, at most 16 KiB serialized and nested at most 32 levels deep (the object itself is level 1). Strings and keys must not contain NUL or unpaired surrogates. `principal` is reserved: the registry sets it.",
      }),
    ),
    occurred_at: Type.Optional(At("When it happened, by the caller's clock (RFC 3339); defaults to created_at.")),
  },
  { additionalProperties: false },
);
export type AuditEventCreate = Static<typeof AuditEventCreate>;

export const AuditBatchCreate = Type.Object(
  { events: Type.Array(AuditEventCreate, { minItems: 1, maxItems: AUDIT_BATCH_MAX, description: "1 to 1,000 events." }) },
  { additionalProperties: false },
);
export type AuditBatchCreate = Static<typeof AuditBatchCreate>;

export const AuditBatch = Type.Object({ events: Type.Array(Type.Ref(AuditEvent)) });

export const AuditListQuery = Type.Object(
  {
    tenant_id: Type.Optional(Uuid),
    product: Type.Optional(ProductKey),
    actor_id: Type.Optional(ActorId("Only events by this actor.")),
    action: Type.Optional(Action),
    since: Type.Optional(At("Only events created at or after this time (inclusive, RFC 3339).")),
    until: Type.Optional(At("Only events created before this time (exclusive, RFC 3339).")),
    limit: limitParam(100, 1000),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
export type AuditListQuery = Static<typeof AuditListQuery>;

export const AuditList = Type.Object({ events: Type.Array(Type.Ref(AuditEvent)), next_cursor: NextCursor });
