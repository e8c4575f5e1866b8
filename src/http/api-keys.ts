import { Type } from "@sinclair/typebox";
import type { FastifyReply } from "fastify";
import { createApiKey, revokeApiKey } from "../domain/api-keys.js";
import { notFound } from "../domain/errors.js";
import type { KeyServices } from "../domain/key-services.js";
import { ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyListQuery, VerifyRequest, VerifyResult } from "../schemas/api-key.js";
import { IdParams, ProblemRef } from "../schemas/common.js";
import { apiKeyList } from "../store/api-keys.js";
import { tenantFindById } from "../store/tenants.js";
import { CursorPart, decodeCursor, page } from "./pagination.js";
import { lazyChildLogger } from "./request-log.js";
import type { App, Deps } from "./types.js";

const errors = { 400: ProblemRef, 401: ProblemRef, 403: ProblemRef, 404: ProblemRef };
const tags = ["api-keys"];
const JSON_TYPE = "application/json; charset=utf-8";

export interface ApiKeyDeps extends Deps {
  keys: KeyServices;
}

export async function apiKeyRoutes(app: App, { db, keys }: ApiKeyDeps): Promise<void> {
  app.post(
    "/v1/api-keys",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Create an API key",
        description:
          "Returns the plaintext `key` once, in this response; the registry keeps only its prefix and an argon2id hash. " +
          "404 for an unknown tenant or an unknown or retired product; 409 for a cancelled tenant.",
        body: ApiKeyCreate,
        response: { 201: ApiKeyCreated, ...errors, 409: ProblemRef, 503: ProblemRef },
      },
    },
    async (req, reply) => {
      const created = await createApiKey(db, keys.hasher, req.body, req.actor);
      return reply.code(201).send(created);
    },
  );

  app.get(
    "/v1/api-keys",
    {
      config: { roles: ["admin", "auditor"] },
      schema: {
        tags,
        summary: "List a tenant's API keys",
        description: "Newest first, revoked keys included, paged with `cursor`. Never the key nor its hash. 404 for an unknown tenant.",
        querystring: ApiKeyListQuery,
        response: { 200: ApiKeyList, ...errors },
      },
    },
    async (req) => {
      const { tenant_id, limit, cursor } = req.query;
      const before = cursor ? decodeCursor("api_keys", cursor, [CursorPart.timestamp, CursorPart.uuid]) : undefined;
      if (!(await tenantFindById(db, tenant_id))) throw notFound("tenant");
      const rows = await apiKeyList(db, {
        tenantId: tenant_id,
        limit: limit + 1,
        ...(before ? { before: { createdAt: before[0] as string, id: before[1] as string } } : {}),
      });
      const { items, next_cursor } = page(rows, limit, "api_keys", (k) => [k.created_at, k.id]);
      return { api_keys: items, next_cursor };
    },
  );

  app.delete(
    "/v1/api-keys/:id",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Revoke an API key",
        description: "The key stops verifying on every instance within about a second. Revoking again: 204, unchanged.",
        params: IdParams,
        response: { 204: Type.Null({ description: "Revoked." }), ...errors },
      },
    },
    async (req, reply) => {
      await db.tx((q) => revokeApiKey(q, req.params.id, req.actor));
      return reply.code(204).send(null);
    },
  );

  // Each answer object (a frozen refusal per reason, a frozen valid answer per loaded key) is
  // serialized once, with the route's own compiled response schema, and the JSON text reused.
  // A string, not a Buffer: Node writes the head and a string body in one write, where a Buffer
  // body takes a writev of two chunks, which costs more per response.
  const bodies = new WeakMap<VerifyResult, string>();
  const send = (reply: FastifyReply, result: VerifyResult): void => {
    app.metrics.verifyResult(result.valid ? "valid" : result.reason);
    let body = bodies.get(result);
    if (body === undefined) {
      body = reply.serializeInput(result, "200") as string;
      if (Object.isFrozen(result)) bodies.set(result, body);
    }
    reply.type(JSON_TYPE).send(body);
  };

  app.post(
    "/v1/internal/api-keys/verify",
    {
      config: { roles: ["admin", "service"] },
      // Products call this on every request: no access-log line per call, and the request's
      // child logger is made only if something logs (a failure; see request-log.ts).
      childLoggerFactory: lazyChildLogger,
      schema: {
        tags,
        summary: "Verify an API key",
        description:
          "Always 200 for a well-typed body: `{valid: true, ...}` or `{valid: false, reason}`, the reason being the first failing " +
          "condition in this order: malformed, not_found, revoked, expired, tenant_cancelled, product_mismatch, not_entitled, " +
          "insufficient_scope. `product` asks that the key be for that product and the tenant entitled to it; `scope`, that " +
          "the key hold it. 503 with Retry-After when too many unseen keys are being checked at once.",
        body: VerifyRequest,
        response: { 200: VerifyResult, 400: ProblemRef, 401: ProblemRef, 403: ProblemRef, 503: ProblemRef },
      },
    },
    // Not async: an answer from memory is sent at once, with no promise on the hot path. (A sync
    // handler that has sent returns undefined; the promise of a loaded answer resolves to undefined.)
    (req, reply) => {
      const result = keys.verifier.verify(req.body);
      if (result instanceof Promise) return result.then((r) => send(reply, r));
      send(reply, result);
    },
  );
}
