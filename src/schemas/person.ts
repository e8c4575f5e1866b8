import { type Static, Type } from "@sinclair/typebox";
import { Nullable, StringEnum, Timestamp, Uuid } from "./common.js";

/** The roles a person can hold: never service (that is for tokens). */
export const PERSON_ROLES = ["admin", "auditor"] as const;

export const Person = Type.Object(
  {
    id: Uuid,
    email: Nullable(Type.String({ description: "The `email` claim at the last sign-in." })),
    name: Nullable(Type.String({ description: "The `name` claim at the last sign-in." })),
    role: StringEnum(PERSON_ROLES, { description: "The role the identity provider's claims gave at the last sign-in." }),
    last_seen_at: Nullable({ ...Timestamp, description: "When the person last used the registry (to within a minute)." }),
    disabled: Type.Boolean({ description: "Disabled people cannot sign in and have no live session." }),
  },
  { $id: "Person", additionalProperties: false, title: "Person", description: "Someone who has signed in through single sign-on." },
);
export type Person = Static<typeof Person>;

export const PersonList = Type.Object({ people: Type.Array(Type.Ref(Person)) }, { additionalProperties: false });

export const Session = Type.Object(
  {
    id: Uuid,
    person: Type.Object({ id: Uuid, email: Nullable(Type.String()) }, { additionalProperties: false }),
    started_at: Timestamp,
    last_seen_at: { ...Timestamp, description: "When the session was last used (written every few seconds, not per request)." },
    expires_at: {
      ...Timestamp,
      description:
        "When the session ends if it is not used again: the idle timeout from last_seen_at, or its absolute end, whichever is first.",
    },
  },
  { additionalProperties: false, title: "Session", description: "A live console session of a person." },
);
export type Session = Static<typeof Session>;

export const SessionList = Type.Object({ sessions: Type.Array(Session) }, { additionalProperties: false });
