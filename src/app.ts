import { randomUUID } from "node:crypto";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyBaseLogger, type FastifyRequest } from "fastify";
import { Histogram } from "prom-client";
import type { Config } from "./config.js";
import { type AccessServices, startAccessServices } from "./domain/access/access-services.js";
import { OidcRelyingParty } from "./domain/access/oidc.js";
import { SessionService } from "./domain/access/sessions.js";
import { AuditLog, loadAuditLogIdentity } from "./domain/audit-log/log.js";
import { type KeyServices, startKeyServices } from "./domain/key-services.js";
import { apiKeyRoutes } from "./http/api-keys.js";
import { auditRoutes } from "./http/audit.js";
import { auditLogRoutes } from "./http/audit-log.js";
import { registerAuth, TokenTable } from "./http/auth.js";
import { AuthFailureLimiter } from "./http/auth-limit.js";
import { catalogRoutes } from "./http/catalog.js";
import { cachedSerializerFactory } from "./http/compiled-schemas.js";
import { consoleRoutes } from "./http/console.js";
import { entitlementRoutes } from "./http/entitlements.js";
import { registerErrorHandling, sendProblem, toProblem } from "./http/errors.js";
import { eventRoutes } from "./http/events.js";
import { healthRoutes } from "./http/health.js";
import { registerInputGuard } from "./http/input-guard.js";
import { registerInputPolicy } from "./http/input-policy.js";
import { registerJsonParser } from "./http/json-parser.js";
import { meRoutes } from "./http/me.js";
import { metricsRoutes, registerKeyMetrics, registerMetrics } from "./http/metrics.js";
import { registerNotFound } from "./http/not-found.js";
import { registerOpenApi } from "./http/openapi.js";
import { peopleRoutes } from "./http/people.js";
import { registerPrelude, unmatchedPrelude } from "./http/prelude.js";
import { RegistryLogController } from "./http/request-log.js";
import { consoleCookies, readCookie, sameOrigin } from "./http/session-cookie.js";
import { ssoRoutes } from "./http/sso.js";
import { tenantRoutes } from "./http/tenants.js";
import { serverTimeouts } from "./http/timeouts.js";
import { tokenRoutes } from "./http/tokens.js";
import type { App, Deps } from "./http/types.js";
import { registerValidation } from "./http/validation.js";
import { ApiKey } from "./schemas/api-key.js";
import { AuditEvent } from "./schemas/audit.js";
import { Product } from "./schemas/catalog.js";
import { Problem } from "./schemas/common.js";
import { Entitlement } from "./schemas/entitlement.js";
import { Person } from "./schemas/person.js";
import { Tenant } from "./schemas/tenant.js";
import { ManagedToken } from "./schemas/token.js";
import { Webhook, WebhookDelivery } from "./schemas/webhook.js";
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
    /** The managed-token cache and its last_used_at writer (closed with the app). */
    access: AccessServices;
    /** The verifiable audit log: its sequencer (woken by audit commits) and reads. */
    auditLog: AuditLog;
    /** People's console sessions: the cookie leg of authentication (closed with the app). */
    sessions: SessionService;
  }
}

export async function buildApp(opts: BuildOptions): Promise<App> {
  // Set once the metrics exist (below); the router's own errors cannot happen before the server listens.
  let unmatched: ReturnType<typeof unmatchedPrelude> | undefined;
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
    // Response serializers compiled once per distinct schema (compiled-schemas.ts).
    schemaController: { compilersFactory: { buildSerializer: cachedSerializerFactory() } },
    forceCloseConnections: "idle",
    ...serverTimeouts(opts.config),
    logController: new RegistryLogController(),
    trustProxy: trustProxy(opts.config.trustProxy),
    // Errors the router raises before any route runs (bad URL encoding, an over-long path parameter):
    // no hook runs for them, so they get the unmatched prelude's headers and count here.
    frameworkErrors: (err, req, reply) => {
      unmatched?.begin(req, reply);
      sendProblem(req, reply, toProblem(err, req.log));
      unmatched?.end(req, reply);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const deps: Deps = { config: opts.config, db: opts.db };
  const routeTable: RouteInfo[] = [];
  app.decorate("routeTable", routeTable);
  app.addHook("onRoute", (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) routeTable.push({ method: m, url: r.url, roles: r.config?.roles });
  });
  registerInputPolicy(app);

  registerValidation(app);
  registerInputGuard(app);
  registerErrorHandling(app);
  registerJsonParser(app);
  const metrics = registerMetrics(app, opts.db);
  const access = await startAccessServices(opts.db, opts.logger);
  app.decorate("access", access);
  // After in-flight requests, before the caller closes the store: pending last_used_at still lands.
  app.addHook("onClose", () => access.close());
  const sso = opts.config.sso;
  const sessions = new SessionService(opts.db, opts.logger, {
    idleMs: sso.sessionIdleMs,
    maxMs: sso.sessionMaxMs,
    cacheTtlMs: 60_000,
    unlistenedTtlMs: 1_000,
  });
  await sessions.start();
  app.decorate("sessions", sessions);
  app.addHook("onClose", () => sessions.close());
  const cookies = consoleCookies(sso);
  const authenticate = registerAuth(app, {
    tokens: new TokenTable(opts.config.principals),
    bearer: access.tokens,
    // People sign in only where single sign-on is configured.
    ...(sso.oidc
      ? {
          cookie: {
            peek: (secret: string, now: number) => sessions.peek(secret, now),
            lookup: (secret: string, now: number) => sessions.lookup(secret, now),
            credential: (req: FastifyRequest) => readCookie(req, cookies.session),
            sameOrigin: (req: FastifyRequest) => sameOrigin(req, sso.publicOrigin),
          },
        }
      : {}),
    limiter: new AuthFailureLimiter(opts.config.authFailureLimit),
    onFailure: (reason) => metrics.authFailures.inc({ reason }),
  });
  // Every route's request id, security headers and authentication come from its prelude hook, which
  // Fastify runs after any app-level onRequest hook: none may answer a matched route's request before
  // it (the not-found hook answers only requests no route matched).
  registerPrelude(app, { authenticate, metrics });
  unmatched = unmatchedPrelude(metrics);
  for (const schema of [Problem, Tenant, AuditEvent, Product, Entitlement, ApiKey, Webhook, WebhookDelivery, ManagedToken, Person])
    app.addSchema(schema);

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
  const sequencingLag = new Histogram({
    name: "tenant_registry_audit_log_lag_seconds",
    help: "From an audit event's commit to its log_index: the oldest event of each sequencing round.",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
    registers: [metrics.registry],
  });
  const auditLog = new AuditLog(opts.db, await loadAuditLogIdentity(opts.db, opts.config.auditLog), opts.logger, {
    sequenced: (_count, lag) => sequencingLag.observe(lag),
  });
  app.decorate("auditLog", auditLog);
  if (opts.config.auditLog.sequencer) auditLog.start();
  app.addHook("onClose", () => auditLog.stop());
  await app.register(auditLogRoutes, { log: auditLog });
  await app.register(eventRoutes, deps);
  await app.register(tokenRoutes, deps);
  await app.register(meRoutes);
  const rp = sso.oidc ? new OidcRelyingParty(sso.oidc, opts.logger) : null;
  await rp?.start();
  await app.register(ssoRoutes, { ...deps, rp, sessions, cookies });
  await app.register(peopleRoutes, { ...deps, sessions });
  await app.register(consoleRoutes, {});

  registerNotFound(app, routeTable, unmatched);
  return app;
}

/** A hop count trusts that many proxies nearest the server (Fastify's types take a count only as a function). */
function trustProxy(setting: Config["trustProxy"]): false | string[] | ((address: string, hop: number) => boolean) {
  return typeof setting === "number" ? (_address, hop) => hop < setting : setting;
}
