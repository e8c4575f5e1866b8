import { type Static, Type } from "@sinclair/typebox";
import { Nullable, Timestamp, Uuid } from "./common.js";

// Glossary: an audit event records one thing that happened, to a tenant or
// in a product. The registry writes its own (tenant.created, ...) in the same
// transaction as the change; products append theirs through POST /v1/audit.

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
