import { Type } from "@sinclair/typebox";
import { createToken, revokeToken, rotateToken } from "../domain/access/tokens.js";
import { notFound } from "../domain/errors.js";
import { IdParams, ProblemRef } from "../schemas/common.js";
import {
  GRACE_DEFAULT_SECONDS,
  ManagedToken,
  ManagedTokenCreate,
  ManagedTokenCreated,
  ManagedTokenList,
  ManagedTokenRotate,
} from "../schemas/token.js";
import { managedTokenFindById, managedTokenList } from "../store/managed-tokens.js";
import type { App, Deps } from "./types.js";

const errors = { 400: ProblemRef, 401: ProblemRef, 403: ProblemRef, 404: ProblemRef };
const tags = ["tokens"];

export async function tokenRoutes(app: App, { db, config }: Deps): Promise<void> {
  // "admin" belongs to REGISTRY_ADMIN_TOKEN even when it is generated at start (embedded mode).
  const bootstrapNames = new Set(["admin", ...config.principals.map((p) => p.name)]);

  app.post(
    "/v1/tokens",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Create a managed token",
        description:
          "Returns the secret `token` once, in this response; the registry keeps only its SHA-256 digest. " +
          "409 when a live token or a bootstrap principal (REGISTRY_ADMIN_TOKEN's `admin`, a REGISTRY_TOKENS name) has the name; " +
          "400 when `expires_at` is not in the future.",
        body: ManagedTokenCreate,
        response: { 201: ManagedTokenCreated, 400: ProblemRef, 401: ProblemRef, 403: ProblemRef, 409: ProblemRef },
      },
    },
    async (req, reply) => {
      const created = await createToken(db, req.body, req.actor, bootstrapNames);
      return reply.code(201).send(created);
    },
  );

  app.get(
    "/v1/tokens",
    {
      config: { roles: ["admin", "auditor"] },
      schema: {
        tags,
        summary: "List managed tokens",
        description: "Newest first, revoked and rotated tokens included. Never a secret nor its digest.",
        response: { 200: ManagedTokenList, 401: ProblemRef, 403: ProblemRef },
      },
    },
    async () => ({ tokens: await managedTokenList(db) }),
  );

  app.get(
    "/v1/tokens/:id",
    {
      config: { roles: ["admin", "auditor"] },
      schema: {
        tags,
        summary: "Get a managed token",
        description: "One token, without its secret. 404 when there is none with this id.",
        params: IdParams,
        response: { 200: Type.Ref(ManagedToken), ...errors },
      },
    },
    async (req) => {
      const token = await managedTokenFindById(db, req.params.id);
      if (!token) throw notFound("token");
      return token;
    },
  );

  app.delete(
    "/v1/tokens/:id",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Revoke a managed token",
        description:
          "The token stops working on every instance within about a second (at once on this one). Revoking again: 204, unchanged, no new audit event.",
        params: IdParams,
        response: { 204: Type.Null({ description: "Revoked." }), ...errors },
      },
    },
    async (req, reply) => {
      await db.tx((q) => revokeToken(q, req.params.id, req.actor));
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/v1/tokens/:id/rotate",
    {
      config: { roles: ["admin"] },
      schema: {
        tags,
        summary: "Rotate a managed token",
        description:
          "A new token (its secret shown once) with the same name, role, description and expiry. The old one keeps working for " +
          "`grace_seconds` (default 86400), then stops on every instance; its `rotated_to` and `grace_ends_at` say so. " +
          "409 for a token that is revoked, expired or already rotated.",
        params: IdParams,
        body: ManagedTokenRotate,
        response: { 201: ManagedTokenCreated, ...errors, 409: ProblemRef },
      },
      // The body is optional: none reads as {} (the default grace).
      preValidation: (req, _reply, done) => {
        req.body ??= {};
        done();
      },
    },
    async (req, reply) => {
      const grace = req.body?.grace_seconds ?? GRACE_DEFAULT_SECONDS;
      const created = await rotateToken(db, req.params.id, grace, req.actor);
      return reply.code(201).send(created);
    },
  );
}
