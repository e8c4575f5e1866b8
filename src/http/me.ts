import { Type } from "@sinclair/typebox";
import { PRINCIPAL_KINDS } from "../domain/access/principal.js";
import { ROLES } from "../domain/roles.js";
import { ProblemRef, StringEnum } from "../schemas/common.js";
import type { App } from "./types.js";

export const Me = Type.Object(
  {
    name: Type.String({ description: "The principal's name (the audit actor of its changes)." }),
    role: StringEnum(ROLES, { description: "What the principal may do: admin, service or auditor." }),
    kind: StringEnum(PRINCIPAL_KINDS, {
      description:
        "How the caller authenticated: `bootstrap` (a token from the registry's environment, for bootstrap and break-glass), `token` (a managed token, POST /v1/tokens) or `person` (signed in through the identity provider).",
    }),
    email: Type.Optional(Type.String({ description: "A person's email (kind `person`), when the identity provider gave one." })),
    expires_at: Type.Optional(
      Type.String({
        format: "date-time",
        description: "A person's session: when it ends unless used again (idle timeout or absolute end).",
      }),
    ),
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
        description: "The name, role and kind of the principal the request authenticated as. X-Actor-Id does not change the answer.",
        response: { 200: Me, 401: ProblemRef, 429: ProblemRef },
      },
    },
    async (req) => {
      const { name, role, kind, email, expiresAt } = req.principal;
      if (kind !== "person") return { name, role, kind };
      return {
        name,
        role,
        kind,
        ...(email !== undefined ? { email } : {}),
        ...(typeof expiresAt === "number" ? { expires_at: new Date(expiresAt).toISOString() } : {}),
      };
    },
  );
}
