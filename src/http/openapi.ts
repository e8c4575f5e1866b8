import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import { conformDocument } from "./openapi-conformance.js";

export const OPENAPI_INFO = {
  title: "tenant-registry",
  version: "1.0.0",
  description:
    "System of record for tenants, their product entitlements, API keys and an append-only audit trail. " +
    "Every /v1 endpoint needs `Authorization: Bearer <token>`; each operation lists the roles it allows. " +
    "Errors are RFC 9457 problem details with a stable `code`.",
};

interface ObjectSchema {
  properties?: Record<string, { default?: unknown }>;
  required?: string[];
  [k: string]: unknown;
}

/**
 * A query parameter with a default (`limit`) is optional to the caller: the
 * validator fills it in before it checks `required`. Say so in the document.
 */
function defaultsNotRequired(q: ObjectSchema): ObjectSchema {
  if (!q.required || !q.properties) return q;
  const props = q.properties;
  return { ...q, required: q.required.filter((name) => props[name]?.default === undefined) };
}

/** OpenAPI 3.1 from the route schemas, served at /openapi.json, with a docs page at /docs. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: OPENAPI_INFO,
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    },
    transformObject: (doc) => ("openapiObject" in doc ? conformDocument(doc.openapiObject) : doc.swaggerObject),
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`) },
    transform: ({ schema, url, route }) => {
      const roles = route.config?.roles;
      if (!roles || !schema) return { schema, url };
      const s = { ...(schema as Record<string, unknown>) };
      if (s.querystring) s.querystring = defaultsNotRequired(s.querystring as ObjectSchema);
      const description = [s.description, `Roles: ${roles.join(", ")}.`].filter(Boolean).join("\n\n");
      return { schema: { ...s, description, security: [{ bearer: [] }] }, url };
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs", uiConfig: { deepLinking: true } });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
}
