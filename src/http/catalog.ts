import { Type } from "@sinclair/typebox";
import { requestProduct, requestTrial } from "../domain/entitlements.js";
import { CatalogRequest, ProductList } from "../schemas/catalog.js";
import { ProblemRef } from "../schemas/common.js";
import { Entitlement } from "../schemas/entitlement.js";
import { productListCurrent } from "../store/products.js";
import type { App, Deps } from "./types.js";

const EntitlementRef = Type.Ref(Entitlement);
const readErrors = { 400: ProblemRef, 401: ProblemRef, 403: ProblemRef };
const errors = { ...readErrors, 404: ProblemRef, 409: ProblemRef };
const tags = ["catalog"];
/** Takes no parameters; any given is a typo and fails loudly. */
const NoQuery = Type.Object({}, { additionalProperties: false });

export async function catalogRoutes(app: App, { db }: Deps): Promise<void> {
  app.get(
    "/v1/catalog",
    {
      config: { roles: ["admin", "service", "auditor"] },
      schema: {
        tags,
        summary: "List the products on sale",
        description: "The catalog file as synced at start, by key. Retired products are not listed.",
        querystring: NoQuery,
        response: { 200: ProductList, ...readErrors },
      },
    },
    async () => ({ products: (await productListCurrent(db)).map(({ retired: _, ...p }) => p) }),
  );

  app.post(
    "/v1/catalog/request",
    {
      config: { roles: ["admin", "service"] },
      schema: {
        tags,
        summary: "Request a product for a tenant",
        description:
          "-> requested: 201 when this changed the entitlement, 200 when it is already requested, trial or active. " +
          "404 unknown tenant or product (retired products included), 409 cancelled tenant. " +
          "Requested entitlements become active when the tenant is activated, or by a grant.",
        body: CatalogRequest,
        response: { 200: EntitlementRef, 201: EntitlementRef, ...errors },
      },
    },
    async (req, reply) => {
      const out = await db.tx((q) => requestProduct(q, req.body, req.actor));
      return reply.code(out.changed ? 201 : 200).send(out.value);
    },
  );

  app.post(
    "/v1/catalog/trial-request",
    {
      config: { roles: ["admin", "service"] },
      schema: {
        tags,
        summary: "Start a trial of a product for a tenant",
        description:
          "-> trial, ending now + the product's trial_days: 201; 200 when the trial is running. 409 when the product has " +
          "no trial, the entitlement is active, the tenant already had this trial, or the tenant is cancelled.",
        body: CatalogRequest,
        response: { 200: EntitlementRef, 201: EntitlementRef, ...errors },
      },
    },
    async (req, reply) => {
      const out = await db.tx((q) => requestTrial(q, req.body, req.actor));
      return reply.code(out.changed ? 201 : 200).send(out.value);
    },
  );
}
