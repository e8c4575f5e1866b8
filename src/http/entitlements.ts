import { Type } from "@sinclair/typebox";
import { listEntitlements, setEntitlement } from "../domain/entitlements.js";
import { ProblemRef } from "../schemas/common.js";
import { Entitlement, EntitlementChange, EntitlementList, EntitlementListQuery } from "../schemas/entitlement.js";
import type { App, Deps } from "./types.js";

const EntitlementRef = Type.Ref(Entitlement);
const readErrors = { 400: ProblemRef, 401: ProblemRef, 403: ProblemRef };
const errors = { ...readErrors, 404: ProblemRef, 409: ProblemRef };
const tags = ["entitlements"];

export async function entitlementRoutes(app: App, { db }: Deps): Promise<void> {
  app.get(
    "/v1/entitlements",
    {
      config: { roles: ["admin", "service", "auditor"] },
      schema: {
        tags,
        summary: "List a tenant's entitlements",
        description: "Every entitlement of the tenant, by product key, retired products included. 404 unknown tenant.",
        querystring: EntitlementListQuery,
        response: { 200: EntitlementList, ...readErrors, 404: ProblemRef },
      },
    },
    async (req) => ({ entitlements: await listEntitlements(db, req.query.tenant_id) }),
  );

  app.post(
    "/v1/entitlements",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Grant or revoke a product",
        description:
          "status active grants, cancelled revokes. 201 when a row is created, 200 otherwise (no audit when nothing changed). " +
          "Revoking a product the tenant never had: 404. Granting on a cancelled tenant: 409; granting a retired product: 404.",
        body: EntitlementChange,
        response: { 200: EntitlementRef, 201: EntitlementRef, ...errors },
      },
    },
    async (req, reply) => {
      const out = await db.tx((q) => setEntitlement(q, req.body, req.actor));
      return reply.code(out.created ? 201 : 200).send(out.value);
    },
  );
}
