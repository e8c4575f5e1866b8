import { Type } from "@sinclair/typebox";
import { endSession, setPersonDisabled } from "../domain/access/people.js";
import type { SessionService } from "../domain/access/sessions.js";
import { IdParams, ProblemRef } from "../schemas/common.js";
import { Person, PersonList, SessionList } from "../schemas/person.js";
import { personList } from "../store/people.js";
import { sessionListLive } from "../store/sessions.js";
import type { App, Deps } from "./types.js";

const tags = ["auth"];
const errors = { 400: ProblemRef, 401: ProblemRef, 403: ProblemRef, 404: ProblemRef };

/** People who signed in through single sign-on, and their sessions (docs/access.md). */
export async function peopleRoutes(app: App, { db, sessions }: Deps & { sessions: SessionService }): Promise<void> {
  const idleMs = sessions.opts.idleMs;

  app.get(
    "/v1/people",
    {
      config: { roles: ["admin", "auditor"] },
      schema: {
        tags,
        summary: "List people",
        description: "Everyone who has signed in through the identity provider, most recently seen first.",
        response: { 200: PersonList, 401: ProblemRef, 403: ProblemRef },
      },
    },
    async () => ({ people: await personList(db) }),
  );

  for (const [action, disabled] of [
    ["disable", true],
    ["enable", false],
  ] as const) {
    app.post(
      `/v1/people/:id/${action}`,
      {
        config: { roles: ["admin"] },
        schema: {
          tags,
          summary: disabled ? "Disable a person" : "Enable a person",
          description: disabled
            ? "Ends the person's sessions on every instance within about a second and refuses their next sign-ins. Already disabled: 200, unchanged."
            : "The person may sign in again (with the role their claims then give). Already enabled: 200, unchanged.",
          params: IdParams,
          response: { 200: Type.Ref(Person), ...errors },
        },
      },
      async (req) => (await db.tx((q) => setPersonDisabled(q, req.params.id, disabled, req.actor))).value,
    );
  }

  app.get(
    "/v1/sessions",
    {
      config: { roles: ["admin", "auditor"] },
      schema: {
        tags,
        summary: "List live sessions",
        description: "Console sessions that have not ended, expired or gone idle, newest first.",
        response: { 200: SessionList, 401: ProblemRef, 403: ProblemRef },
      },
    },
    async () => ({ sessions: await sessionListLive(db, idleMs) }),
  );

  app.delete(
    "/v1/sessions/:id",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "End a session",
        description: "The session stops working on every instance within about a second. Ended already (or expired): 204, unchanged.",
        params: IdParams,
        response: { 204: Type.Null({ description: "Ended." }), ...errors },
      },
    },
    async (req, reply) => {
      await db.tx((q) => endSession(q, req.params.id, req.actor, idleMs));
      return reply.code(204).send(null);
    },
  );
}
