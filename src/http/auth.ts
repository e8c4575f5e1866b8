import { hash } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Principal } from "../config.js";
import type { Actor } from "../domain/actor.js";
import { AppError } from "../domain/errors.js";
import type { Role } from "../domain/roles.js";
import type { AuthFailureLimiter } from "./auth-limit.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Roles allowed on the route. Every /v1 route must declare it; absent means public. */
    roles?: readonly Role[];
  }
  interface FastifyRequest {
    /** Set on authenticated routes. */
    actor: Actor;
  }
}

/**
 * A presented token is looked up by its SHA-256, never compared as text:
 * the lookup compares digests, and timing can tell an attacker at most how
 * much of a digest matched, which gives no way to a token (that would need
 * a preimage). One hash to a string and one Map lookup per request: no
 * buffer to allocate, no loop over every configured token.
 */
const digest = (s: string): string => hash("sha256", s, "base64");

export class TokenTable {
  private readonly byDigest = new Map<string, Omit<Principal, "token">>();

  constructor(principals: readonly Principal[]) {
    // The first principal configured with a token keeps it.
    for (const p of principals) {
      const d = digest(p.token);
      if (!this.byDigest.has(d)) this.byDigest.set(d, { name: p.name, role: p.role });
    }
  }

  find(token: string): Omit<Principal, "token"> | undefined {
    return this.byDigest.get(digest(token));
  }
}

/** API paths open without a token: the audit log's verifier key is public by design (docs/audit-log.md). */
const OPEN_API_PATHS: ReadonlySet<string> = new Set(["/v1/audit/log/key"]);
/** Paths that must declare roles: the API (less the open paths) and the metrics. */
export const isProtectedPath = (url: string) => (url.startsWith("/v1/") && !OPEN_API_PATHS.has(url)) || url === "/metrics";

const BEARER = /^Bearer ([\x21-\x7e]+)$/i;
const ACTOR_ID = /^[^\p{Cc}]{1,200}$/u;

export interface AuthOptions {
  tokens: TokenTable;
  limiter: AuthFailureLimiter;
  /** Called on every refused authentication (metrics). */
  onFailure?: (reason: "missing" | "invalid" | "rate_limited") => void;
}

/**
 * Declares `req.actor` and checks that every protected route declares its
 * roles; returns the check itself, which the route prelude (prelude.ts)
 * runs first on every request of a route with roles.
 */
export function registerAuth(app: FastifyInstance, opts: AuthOptions): (req: FastifyRequest, roles: readonly Role[]) => void {
  app.decorateRequest("actor", null as unknown as Actor);
  app.addHook("onRoute", (route) => {
    if (isProtectedPath(route.url) && !route.config?.roles) {
      throw new Error(`route ${route.method} ${route.url} declares no roles`);
    }
  });
  return (req, roles) => authenticate(req, roles, opts);
}

function authenticate(req: FastifyRequest, roles: readonly Role[], opts: AuthOptions): void {
  const header = req.headers.authorization;
  const match = header ? BEARER.exec(header) : null;
  const principal = match?.[1] ? opts.tokens.find(match[1]) : undefined;
  if (!principal) {
    const wait = opts.limiter.retryAfter(req.ip);
    if (wait > 0) {
      opts.onFailure?.("rate_limited");
      throw new AppError("rate_limited", "too many failed authentications from this address; retry later", { retryAfterSeconds: wait });
    }
    opts.limiter.recordFailure(req.ip);
    opts.onFailure?.(header ? "invalid" : "missing");
    throw new AppError("unauthorized", header ? "the bearer token is not valid" : "missing Authorization: Bearer <token>");
  }
  if (!roles.includes(principal.role)) {
    throw new AppError("forbidden", `role ${principal.role} may not call this endpoint`);
  }
  const xActor = req.headers["x-actor-id"];
  let actorId = principal.name;
  if (xActor !== undefined) {
    if (typeof xActor !== "string" || !ACTOR_ID.test(xActor.trim())) {
      throw new AppError("invalid_input", "X-Actor-Id must be 1-200 characters without control characters", {
        errors: [{ field: "headers/x-actor-id", message: "must be 1-200 characters without control characters" }],
      });
    }
    actorId = xActor.trim();
  }
  req.actor = { principal: principal.name, role: principal.role, actorId, onBehalf: xActor !== undefined };
}
