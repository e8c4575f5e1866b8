import type { AuditInput } from "../store/audit.js";
import type { Role } from "./roles.js";

/**
 * Who is acting. `principal` is the authenticated token's name; `actorId` is
 * the audit actor: the principal itself, or the human named by X-Actor-Id.
 */
export interface Actor {
  principal: string;
  /** The principal's role; absent for work the service does by itself. */
  role?: Role;
  actorId: string;
  /** The caller named someone with X-Actor-Id (even its own name): events then record the principal too. */
  onBehalf?: boolean;
}

/** The actor fields of a registry-written audit event. */
export function auditActor(actor: Actor, metadata: Record<string, unknown> = {}): Pick<AuditInput, "actor_id" | "metadata"> {
  return {
    actor_id: actor.actorId,
    metadata: actor.onBehalf || actor.actorId !== actor.principal ? { ...metadata, principal: actor.principal } : metadata,
  };
}

/** The actor used for work the service does by itself (seeding, sweeps). */
export const SYSTEM_ACTOR: Actor = { principal: "system", actorId: "system" };
