import type { OidcSettings } from "../../config.js";
import type { Person } from "../../schemas/person.js";
import { auditInsert } from "../../store/audit.js";
import type { Db, Queryable } from "../../store/db.js";
import { personFindByIdForUpdate, personSetDisabled, personUpsert } from "../../store/people.js";
import { sessionEnd, sessionExists, sessionsEndForPerson } from "../../store/sessions.js";
import { type Actor, auditActor } from "../actor.js";
import { notFound } from "../errors.js";
import type { Outcome } from "../outcome.js";
import type { SignInClaims } from "./oidc.js";
import { notifySessionChange, type SessionService } from "./sessions.js";

/** The role the claims give: admin wins over auditor; never service; null when none applies. */
export function roleFromClaims(
  values: readonly string[],
  settings: Pick<OidcSettings, "adminValues" | "auditorValues">,
): Person["role"] | null {
  if (values.some((v) => settings.adminValues.includes(v))) return "admin";
  if (values.some((v) => settings.auditorValues.includes(v))) return "auditor";
  return null;
}

export type SignInOutcome =
  | { result: "no_role" }
  | { result: "disabled"; person: Person }
  | { result: "signed_in"; person: Person; secret: string; expires_at: string };

/**
 * A validated sign-in becomes a session: the person is created or
 * refreshed (role taken afresh), the session started and `session.started`
 * recorded, in one transaction. No role, or a disabled person: nothing is
 * started.
 */
export async function signIn(db: Db, sessions: SessionService, claims: SignInClaims, settings: OidcSettings): Promise<SignInOutcome> {
  const role = roleFromClaims(claims.roleValues, settings);
  if (role === null) return { result: "no_role" };
  return db.tx(async (q) => {
    const person = await personUpsert(q, { issuer: claims.issuer, subject: claims.subject, email: claims.email, name: claims.name, role });
    if (person.disabled) return { result: "disabled", person };
    const session = await sessions.begin(q, person.id);
    const actorId = person.email ?? claims.subject;
    await auditInsert(q, [
      {
        actor_id: actorId,
        action: "session.started",
        target_type: "session",
        target_id: session.id,
        metadata: { person_id: person.id, role: person.role, expires_at: session.expires_at },
      },
    ]);
    return { result: "signed_in", person, secret: session.secret, expires_at: session.expires_at };
  });
}

/** Ends a live session (logout, DELETE /v1/sessions/{id}); an ended or expired one is unchanged; unknown: 404. */
export async function endSession(q: Queryable, id: string, actor: Actor, idleMs: number): Promise<Outcome<null>> {
  const ended = await sessionEnd(q, id, idleMs);
  if (!ended) {
    if (!(await sessionExists(q, id))) throw notFound("session");
    return { value: null, changed: false };
  }
  await auditInsert(q, [
    {
      action: "session.ended",
      target_type: "session",
      target_id: id,
      ...auditActor(actor, { person_id: ended.person_id, email: ended.email }),
    },
  ]);
  await notifySessionChange(q, { session_id: id });
  return { value: null, changed: true };
}

/** Disabling ends the person's sessions at once (every instance, on commit) and refuses their next sign-ins. */
export async function setPersonDisabled(q: Queryable, id: string, disabled: boolean, actor: Actor): Promise<Outcome<Person>> {
  const before = await personFindByIdForUpdate(q, id);
  if (!before) throw notFound("person");
  if (before.disabled === disabled) return { value: before, changed: false };
  const person = await personSetDisabled(q, id, disabled);
  const ended = disabled ? await sessionsEndForPerson(q, id) : [];
  await auditInsert(q, [
    {
      action: disabled ? "person.disabled" : "person.enabled",
      target_type: "person",
      target_id: id,
      ...auditActor(actor, { email: person.email, ...(disabled ? { sessions_ended: ended.length } : {}) }),
    },
  ]);
  await notifySessionChange(q, { person_id: id });
  return { value: person, changed: true };
}
