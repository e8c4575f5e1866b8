import { createHash, timingSafeEqual } from "node:crypto";
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

const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * Finds the principal for a presented token without leaking, through timing,
 * which token or how much of it matched: every configured token's digest is
 * compared in full, in constant time.
 */
export class TokenTable {
  private readonly entries: { digest: Buffer; principal: Omit<Principal, "token"> }[];

  constructor(principals: readonly Principal[]) {
    this.entries = principals.map((p) => ({ digest: digest(p.token), principal: { name: p.name, role: p.role } }));
  }

  find(token: string): Omit<Principal, "token"> | undefined {
    const d = digest(token);
    let found: Omit<Principal, "token"> | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(d, e.digest) && !found) found = e.principal;
    }
    return found;
  }
}

/** Paths that must declare roles: the API and the metrics. */
export const isProtectedPath = (url: string) => url.startsWith("/v1/") || url === "/metrics";

const BEARER = /^Bearer ([\x21-\x7e]+)$/i;
const ACTOR_ID = /^[^\p{Cc}]{1,200}$/u;

export interface AuthOptions {
  tokens: TokenTable;
  limiter: AuthFailureLimiter;
  /** Called on every refused authentication (metrics). */
  onFailure?: (reason: "missing" | "invalid" | "rate_limited") => void;
}

export function registerAuth(app: FastifyInstance, opts: AuthOptions): void {
  app.decorateRequest("actor", null as unknown as Actor);
  app.addHook("onRoute", (route) => {
    if (isProtectedPath(route.url) && !route.config?.roles) {
      throw new Error(`route ${route.method} ${route.url} declares no roles`);
    }
  });
  // Callback style (no promise per request): this runs on every verify.
  app.addHook("onRequest", (req, _reply, done) => {
    const roles = req.routeOptions.config.roles;
    if (!roles) return done();
    try {
      authenticate(req, roles, opts);
      done();
    } catch (err) {
      done(err as Error);
    }
  });
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
