import { randomUUID } from "node:crypto";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, type RouteOptions } from "fastify";
import FindMyWay from "find-my-way";
import type { Config } from "./config.js";
import { AppError } from "./domain/errors.js";
import { type KeyServices, startKeyServices } from "./domain/key-services.js";
import { apiKeyRoutes } from "./http/api-keys.js";
import { auditRoutes } from "./http/audit.js";
import { registerAuth, TokenTable } from "./http/auth.js";
import { AuthFailureLimiter } from "./http/auth-limit.js";
import { catalogRoutes } from "./http/catalog.js";
import { consoleRoutes } from "./http/console.js";
import { entitlementRoutes } from "./http/entitlements.js";
import { problem, registerErrorHandling, sendProblem, toProblem } from "./http/errors.js";
import { healthRoutes } from "./http/health.js";
import { meRoutes } from "./http/me.js";
import { metricsRoutes, registerKeyMetrics, registerMetrics } from "./http/metrics.js";
import { registerOpenApi } from "./http/openapi.js";
import { tenantRoutes } from "./http/tenants.js";
import type { App, Deps } from "./http/types.js";
import { registerValidation } from "./http/validation.js";
import { ApiKey } from "./schemas/api-key.js";
import { AuditEvent } from "./schemas/audit.js";
import { Product } from "./schemas/catalog.js";
import { Problem } from "./schemas/common.js";
import { Entitlement } from "./schemas/entitlement.js";
import { Tenant } from "./schemas/tenant.js";
import type { Db } from "./store/db.js";

export const BODY_LIMIT = 1024 * 1024;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface BuildOptions {
  config: Config;
  db: Db;
  /** The process logger (see logger.ts); tests pass one writing to a stream they read. */
  logger: FastifyBaseLogger;
}

export interface RouteInfo {
  method: string;
  url: string;
  roles: readonly string[] | undefined;
}

declare module "fastify" {
  interface FastifyInstance {
    /** Every route as registered: the security suite walks the protected ones. */
    routeTable: RouteInfo[];
    /** API-key hashing, the verify cache and the last_used_at writer (closed with the app). */
    keyServices: KeyServices;
  }
}

export async function buildApp(opts: BuildOptions): Promise<App> {
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: BODY_LIMIT,
    // genReqId reads X-Request-Id itself, so a malformed one is replaced rather than trusted.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
    forceCloseConnections: "idle",
    trustProxy: opts.config.trustProxy,
    // Errors the router raises before any route runs (bad URL encoding, an over-long path parameter).
    frameworkErrors: (err, req, reply) => sendProblem(req, reply, toProblem(err, req.log)),
  }).withTypeProvider<TypeBoxTypeProvider>();

  const deps: Deps = { config: opts.config, db: opts.db };
  const routeTable: RouteInfo[] = [];
  app.decorate("routeTable", routeTable);
  app.addHook("onRoute", (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) routeTable.push({ method: m, url: r.url, roles: r.config?.roles });
    if (r.url.startsWith("/v1/")) rejectUndeclaredInput(r);
  });

  // First hook: even a request refused by auth carries its id back.
  app.addHook("onRequest", async (req, reply) => {
    reply.header("x-request-id", req.id);
  });
  registerValidation(app);
  registerErrorHandling(app);
  registerJsonParser(app);
  const metrics = registerMetrics(app, opts.db);
  registerAuth(app, {
    tokens: new TokenTable(opts.config.principals),
    limiter: new AuthFailureLimiter(opts.config.authFailureLimit),
    onFailure: (reason) => metrics.authFailures.inc({ reason }),
  });
  for (const schema of [Problem, Tenant, AuditEvent, Product, Entitlement, ApiKey]) app.addSchema(schema);

  app.addHook("onSend", async (req, reply) => {
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "no-referrer");
    if (req.url.startsWith("/v1")) reply.header("cache-control", "no-store");
    else if (!req.url.startsWith("/docs")) reply.header("x-frame-options", "DENY");
  });

  await registerOpenApi(app);
  await app.register(healthRoutes, deps);
  await app.register(metricsRoutes);
  await app.register(tenantRoutes, deps);
  await app.register(catalogRoutes, deps);
  await app.register(entitlementRoutes, deps);

  const keys = await startKeyServices(opts.db, opts.logger, {
    argon2Threads: opts.config.argon2Threads,
    argon2Queue: opts.config.argon2Queue,
  });
  app.decorate("keyServices", keys);
  registerKeyMetrics(metrics, keys);
  // onClose runs after in-flight requests finish and before the caller closes the store: pending last_used_at still lands.
  app.addHook("onClose", () => keys.close());
  await app.register(apiKeyRoutes, { ...deps, keys });
  await app.register(auditRoutes, deps);
  await app.register(meRoutes);
  await app.register(consoleRoutes, {});

  registerNotFound(app, routeTable);
  return app;
}

/**
 * Typos fail loudly: a /v1 route that declares no query parameters accepts
 * none, and one that declares no body accepts none (activate, cancel,
 * DELETE), rather than ignoring what the caller thought it was sending.
 */
function rejectUndeclaredInput(route: RouteOptions): void {
  route.schema ??= {};
  route.schema.querystring ??= NO_QUERY;
  if (route.schema.body === undefined && route.method !== "GET" && route.method !== "HEAD") {
    const hooks = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    route.preValidation = [...hooks, rejectBody];
  }
}

const NO_QUERY = Type.Object({}, { additionalProperties: false });

/** `{}` is accepted: many clients send it for "nothing". */
async function rejectBody(req: FastifyRequest): Promise<void> {
  const b = req.body;
  const empty = b === undefined || (typeof b === "object" && b !== null && !Array.isArray(b) && Object.keys(b).length === 0);
  if (!empty) {
    throw new AppError("invalid_input", "this endpoint takes no request body", { errors: [{ field: "body", message: "must be empty" }] });
  }
}

/**
 * JSON only (anything else is 415); an empty body with a JSON content type
 * reads as no body. `__proto__` and `constructor.prototype` keys are errors.
 */
function registerJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser("error", "error");
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") return done(null, undefined);
    parse(req, text, done);
  });
}

/** 404 for unknown paths, 405 with Allow for a known path with another method. */
function registerNotFound(app: FastifyInstance, routes: RouteInfo[]): void {
  const router = FindMyWay();
  let built = false;
  app.setNotFoundHandler(async (req, reply) => {
    if (!built) {
      for (const r of routes) if (r.method !== "HEAD") router.on(r.method as "GET", r.url, () => {});
      built = true;
    }
    const path = req.url.split("?")[0] ?? "/";
    const allowed = ["GET", "POST", "PATCH", "PUT", "DELETE"].filter((m) => router.find(m as "GET", path) !== null);
    if (allowed.length > 0) {
      reply.header("allow", allowed.join(", "));
      return sendProblem(req, reply, problem(405, "not_found", `${req.method} is not allowed here; use ${allowed.join(", ")}`));
    }
    return sendProblem(req, reply, problem(404, "not_found", `no route for ${req.method} ${path}`));
  });
}
