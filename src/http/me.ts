import { Type } from "@sinclair/typebox";
import { AppError } from "../domain/errors.js";
import { ROLES } from "../domain/roles.js";
import { ProblemRef, StringEnum } from "../schemas/common.js";
import type { App } from "./types.js";

export const Me = Type.Object(
  {
    name: Type.String({ description: "The principal's name (the audit actor of its changes)." }),
    role: StringEnum(ROLES, { description: "What the principal may do: admin, service or auditor." }),
  },
  { additionalProperties: false, title: "Me", description: "The principal a bearer token belongs to." },
);

/** Who the bearer token belongs to: the console and `tenant-registry whoami` ask this. */
export async function meRoutes(app: App): Promise<void> {
  app.get(
    "/v1/me",
    {
      config: { roles: ROLES },
      schema: {
        tags: ["auth"],
        summary: "Who is calling",
        description: "The name and role of the principal the bearer token belongs to. X-Actor-Id does not change the answer.",
        response: { 200: Me, 401: ProblemRef, 429: ProblemRef },
      },
    },
    async (req) => {
      const { principal, role } = req.actor;
      // Every authenticated request carries its principal's role (auth.ts); only service-internal actors lack one.
      if (!role) throw new AppError("internal", "the request has no authenticated role");
      return { name: principal, role };
    },
  );
}
