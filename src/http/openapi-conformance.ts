/**
 * The last pass over the generated OpenAPI document, for tools that read it
 * without knowing this server (API testers, client generators): every
 * operation gets an operationId, error responses are declared with the
 * media type they are sent with (application/problem+json), and the
 * answers every route can give whatever its own schema says are listed:
 * 401/403/429 from authentication, 405 for another method on the path,
 * 413/415 for bodies, 503 when the database is unavailable.
 */

/** Stable names for client generators, by "METHOD path". New routes must be added (a test checks). */
export const OPERATION_IDS: Record<string, string> = {
  "GET /healthz": "getHealth",
  "GET /readyz": "getReadiness",
  "GET /metrics": "getMetrics",
  "POST /v1/tenants": "createTenant",
  "GET /v1/tenants": "listTenants",
  "GET /v1/tenants/{id}": "getTenant",
  "PATCH /v1/tenants/{id}": "updateTenant",
  "GET /v1/tenants/by-slug/{slug}": "getTenantBySlug",
  "POST /v1/tenants/{id}/activate": "activateTenant",
  "POST /v1/tenants/{id}/cancel": "cancelTenant",
  "GET /v1/catalog": "listProducts",
  "POST /v1/catalog/request": "requestProduct",
  "POST /v1/catalog/trial-request": "requestTrial",
  "GET /v1/entitlements": "listEntitlements",
  "POST /v1/entitlements": "changeEntitlement",
  "POST /v1/api-keys": "createApiKey",
  "GET /v1/api-keys": "listApiKeys",
  "DELETE /v1/api-keys/{id}": "revokeApiKey",
  "POST /v1/internal/api-keys/verify": "verifyApiKey",
  "POST /v1/audit": "appendAuditEvent",
  "GET /v1/audit": "listAuditEvents",
  "POST /v1/audit/batch": "appendAuditEvents",
  "GET /v1/audit/stream": "streamAuditEvents",
  "GET /v1/internal/changes": "streamChanges",
  "POST /v1/webhooks": "createWebhook",
  "GET /v1/webhooks": "listWebhooks",
  "GET /v1/webhooks/{id}": "getWebhook",
  "PATCH /v1/webhooks/{id}": "updateWebhook",
  "DELETE /v1/webhooks/{id}": "deleteWebhook",
  "POST /v1/webhooks/{id}/rotate-secret": "rotateWebhookSecret",
  "POST /v1/webhooks/{id}/test": "testWebhook",
  "GET /v1/webhooks/{id}/deliveries": "listWebhookDeliveries",
  "POST /v1/webhooks/{id}/deliveries/{delivery_id}/retry": "retryWebhookDelivery",
  "GET /v1/me": "getMe",
  "POST /v1/tokens": "createToken",
  "GET /v1/tokens": "listTokens",
  "GET /v1/tokens/{id}": "getToken",
  "DELETE /v1/tokens/{id}": "revokeToken",
  "POST /v1/tokens/{id}/rotate": "rotateToken",
  "GET /v1/auth/providers": "getAuthProviders",
  "GET /v1/auth/login": "startLogin",
  "GET /v1/auth/callback": "finishLogin",
  "POST /v1/auth/logout": "logout",
  "GET /v1/people": "listPeople",
  "POST /v1/people/{id}/disable": "disablePerson",
  "POST /v1/people/{id}/enable": "enablePerson",
  "GET /v1/sessions": "listSessions",
  "DELETE /v1/sessions/{id}": "endSession",
};

/** Operations whose body may be left out (the route reads none as `{}`). */
const OPTIONAL_BODIES = new Set(["POST /v1/tokens/{id}/rotate"]);

export const PROBLEM_MEDIA_TYPE = "application/problem+json";

const PROBLEM = { $ref: "#/components/schemas/Problem" };
const problemResponse = (description: string) => ({ description, content: { [PROBLEM_MEDIA_TYPE]: { schema: PROBLEM } } });

/** Responses any operation of a kind can give, beyond those its route declares. */
const COMMON = {
  secured: {
    "401": "Missing or unknown bearer token.",
    "403": "The token's role may not call this operation.",
    "429": "Too many failed authentications from this address; retry after Retry-After seconds.",
  },
  withBody: {
    "400": "The request is invalid; `errors` names each bad field.",
    "413": "The request body is too large.",
    "415": "The body is not application/json.",
  },
  api: { "503": "The database is unavailable; retry after Retry-After seconds." },
  all: { "405": "This path does not take this method; the Allow header lists those it takes." },
} as const;

interface Operation {
  operationId?: string;
  security?: unknown[];
  requestBody?: { required?: boolean };
  responses?: Record<string, { description?: string; content?: Record<string, unknown> }>;
}

interface Document {
  paths?: Record<string, Record<string, Operation>>;
  [k: string]: unknown;
}

const METHODS = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace", "query"]);

export function conformDocument<T>(document: T): T {
  const doc = document as Document;
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.has(method)) continue;
      const key = `${method.toUpperCase()} ${path}`;
      op.operationId ??= OPERATION_IDS[key];
      if (op.requestBody && OPTIONAL_BODIES.has(key)) op.requestBody.required = false;
      op.responses ??= {};
      const responses = op.responses;
      for (const [status, response] of Object.entries(responses)) {
        // The sign-in callback's refusals are pages for a browser, not problems.
        if (Number(status) < 400 || !response.content || "text/html" in response.content) continue;
        const schema = Object.values(response.content)[0];
        response.content = { [PROBLEM_MEDIA_TYPE]: schema };
      }
      const add = (extra: Record<string, string>) => {
        for (const [status, description] of Object.entries(extra)) responses[status] ??= problemResponse(description);
      };
      if (op.security?.length) add(COMMON.secured);
      if (op.requestBody) add(COMMON.withBody);
      if (path.startsWith("/v1/")) add(COMMON.api);
      add(COMMON.all);
    }
  }
  return document;
}
