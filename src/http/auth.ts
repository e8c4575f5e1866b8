import { hash } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Principal as BootstrapPrincipal } from "../config.js";
import type { CredentialLeg, Principal } from "../domain/access/principal.js";
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
    /** Set on authenticated routes: who acts, as the audit trail records it. */
    actor: Actor;
    /** Set on authenticated routes: who the request authenticated as. */
    principal: Principal;
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

/** The bootstrap tokens, from the environment. */
export class TokenTable {
  private readonly byDigest = new Map<string, Principal>();

  constructor(principals: readonly BootstrapPrincipal[]) {
    // The first principal configured with a token keeps it.
    for (const p of principals) {
      const d = digest(p.token);
      if (!this.byDigest.has(d)) this.byDigest.set(d, { kind: "bootstrap", id: null, name: p.name, role: p.role });
    }
  }

  find(token: string): Principal | undefined {
    return this.byDigest.get(digest(token));
  }
}

/**
 * Paths that must declare roles: the API and the metrics. Signing in and
 * out (/v1/auth/...) is open: it is how a person gets a session.
 */
export const isProtectedPath = (url: string) => (url.startsWith("/v1/") && !url.startsWith("/v1/auth/")) || url === "/metrics";

const BEARER = /^Bearer ([\x21-\x7e]+)$/i;
const ACTOR_ID = /^[^\p{Cc}]{1,200}$/u;

export interface AuthOptions {
  /** The bootstrap tokens: tried first, synchronously. */
  tokens: TokenTable;
  /** Bearer tokens that are no bootstrap token: managed tokens (`rt_…`). */
  bearer?: CredentialLeg;
  /**
   * The second leg, for people signed in to the console: a session cookie.
   * Tried only when the request has no Authorization header (a header, when
   * present, wins, valid or not). `credential(req)` reads the cookie's value
   * (`tr_session`, or `__Host-tr_session` behind https), undefined when
   * there is none; `peek`/`lookup` resolve it to a person as for bearer
   * tokens. A cookie-authenticated request that changes anything (POST,
   * PATCH, PUT, DELETE) is refused (403, nothing runs) unless
   * `sameOrigin(req)` says it comes from the registry's own origin (its
   * `Origin` equals PUBLIC_URL's, or, without `Origin`, `Sec-Fetch-Site`
   * is `same-origin`).
   */
  cookie?: CredentialLeg & {
    credential(req: FastifyRequest): string | undefined;
    sameOrigin(req: FastifyRequest): boolean;
  };
  limiter: AuthFailureLimiter;
  /** Called on every refused authentication (metrics). */
  onFailure?: (reason: "missing" | "invalid" | "rate_limited") => void;
}

/**
 * Declares `req.actor` and `req.principal` and checks that every protected
 * route declares its roles; returns the check itself, which the route
 * prelude (prelude.ts) runs first on every request of a route with roles.
 * It returns nothing when it could decide at once (bootstrap tokens, cached
 * managed tokens: the verify hot path), and a promise only when a leg must
 * ask the store.
 */
export function registerAuth(app: FastifyInstance, opts: AuthOptions): Authenticate {
  app.decorateRequest("actor", null as unknown as Actor);
  app.decorateRequest("principal", null as unknown as Principal);
  app.addHook("onRoute", (route) => {
    if (isProtectedPath(route.url) && !route.config?.roles) {
      throw new Error(`route ${route.method} ${route.url} declares no roles`);
    }
  });
  return (req, roles) => authenticate(req, roles, opts);
}

export type Authenticate = (req: FastifyRequest, roles: readonly Role[]) => void | Promise<void>;

const UNSAFE_METHODS = new Set(["POST", "PATCH", "PUT", "DELETE"]);

/**
 * The one authentication step: the request's credential, resolved by its
 * leg to a principal (or to none), then `admit`. Bootstrap tokens are a
 * Map lookup; a leg answers from its cache when it can, and asks the store
 * only on a miss, and not for an address that is already refused for
 * failing too often (so a flood of made-up tokens cannot reach the store).
 */
function authenticate(req: FastifyRequest, roles: readonly Role[], opts: AuthOptions): void | Promise<void> {
  const header = req.headers.authorization;
  let leg: CredentialLeg | undefined;
  let credential: string | undefined;
  if (header !== undefined) {
    credential = BEARER.exec(header)?.[1];
    if (credential !== undefined) {
      const bootstrap = opts.tokens.find(credential);
      if (bootstrap) return admit(req, roles, bootstrap, opts);
      leg = opts.bearer;
    }
  } else if (opts.cookie) {
    credential = opts.cookie.credential(req);
    leg = opts.cookie;
  }
  if (leg === undefined || credential === undefined) return admit(req, roles, null, opts);
  const now = Date.now();
  const known = leg.peek(credential, now);
  if (known !== undefined) return admit(req, roles, known, opts, leg === opts.cookie);
  refuseIfLimited(req, opts);
  const viaCookie = leg === opts.cookie;
  return leg.lookup(credential, now).then((found) => admit(req, roles, found, opts, viaCookie));
}

function refuseIfLimited(req: FastifyRequest, opts: AuthOptions): void {
  const wait = opts.limiter.retryAfter(req.ip);
  if (wait > 0) {
    opts.onFailure?.("rate_limited");
    throw new AppError("rate_limited", "too many failed authentications from this address; retry later", { retryAfterSeconds: wait });
  }
}

/** Everything after resolution reads only the principal: roles, the audit actor. */
function admit(req: FastifyRequest, roles: readonly Role[], principal: Principal | null, opts: AuthOptions, viaCookie = false): void {
  if (!principal) {
    refuseIfLimited(req, opts);
    opts.limiter.recordFailure(req.ip);
    const header = req.headers.authorization;
    const presented = header !== undefined || viaCookie;
    opts.onFailure?.(presented ? "invalid" : "missing");
    throw new AppError(
      "unauthorized",
      header !== undefined
        ? "the bearer token is not valid"
        : viaCookie
          ? "the session is not valid"
          : "missing Authorization: Bearer <token>",
    );
  }
  if (viaCookie && UNSAFE_METHODS.has(req.method) && !opts.cookie?.sameOrigin(req)) {
    throw new AppError("forbidden", "a request signed in by cookie that changes anything must come from the registry's own origin");
  }
  if (!roles.includes(principal.role)) {
    throw new AppError("forbidden", `role ${principal.role} may not call this endpoint`);
  }
  const xActor = req.headers["x-actor-id"];
  let actorId = principal.name;
  // A person acts as themselves: X-Actor-Id (a service naming the human it acts for) is ignored for them.
  const onBehalf = xActor !== undefined && principal.kind !== "person";
  if (onBehalf) {
    if (typeof xActor !== "string" || !ACTOR_ID.test(xActor.trim())) {
      throw new AppError("invalid_input", "X-Actor-Id must be 1-200 characters without control characters", {
        errors: [{ field: "headers/x-actor-id", message: "must be 1-200 characters without control characters" }],
      });
    }
    actorId = xActor.trim();
  }
  req.principal = principal;
  req.actor = { principal: principal.name, role: principal.role, actorId, onBehalf };
}
