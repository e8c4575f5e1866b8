import { createHash } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";
import { LRUCache } from "lru-cache";
import { createRegistryClient, ok, type Problem, RegistryError } from "./registry-client.js";

export interface RegistryAuthOptions {
  /** Base URL of the registry. */
  url: string;
  /** A registry token of role `service` (it may verify keys). */
  token: string;
  /** The product this service is: keys must be for it (or for all products) and the tenant entitled to it. */
  product: string;
  /** A scope every request must hold. */
  scope?: string;
  /**
   * How long a positive answer is reused (default 5000 ms). This is the
   * staleness bound: a key revoked, expired or whose tenant was cancelled keeps
   * working at this product for up to this long. 0 disables the cache.
   */
  cacheTtlMs?: number;
  /** Most keys kept in the cache (default 10,000); the least recently used go first. */
  maxEntries?: number;
  /** Give up on the registry after this long and answer 503 (default 2000 ms). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** What a verified request carries. */
export interface RegistryPrincipal {
  tenant_id: string;
  key_id: string;
  scopes: string[];
}

/** A refusal carries `reason` (the verify reason, or `missing_key`) beside the usual problem fields. */
export type KeyCheck = { ok: true; principal: RegistryPrincipal } | { ok: false; problem: Problem & { reason: string } };

export interface KeyChecker {
  check(headers: IncomingHttpHeaders): Promise<KeyCheck>;
}

const FORBIDDEN_REASONS = new Set(["product_mismatch", "not_entitled", "insufficient_scope"]);

function refusal(status: 401 | 403 | 503, reason: string, detail: string): KeyCheck {
  const code = status === 401 ? "unauthorized" : status === 403 ? "forbidden" : "unavailable";
  const title = status === 401 ? "Unauthorized" : status === 403 ? "Forbidden" : "Service Unavailable";
  return { ok: false, problem: { type: `urn:tenant-registry:problem:${code}`, title, status, detail, code, reason } };
}

function keyFrom(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m?.[1]) return m[1];
  }
  const apiKey = headers["x-api-key"];
  return (Array.isArray(apiKey) ? apiKey[0] : apiKey)?.trim() || undefined;
}

/** The framework-free core of the middleware: headers in, a principal or a problem out. */
export function createKeyChecker(options: RegistryAuthOptions): KeyChecker {
  const client = createRegistryClient({
    url: options.url,
    token: options.token,
    timeoutMs: options.timeoutMs ?? 2000,
    fetch: options.fetch,
  });
  const ttl = options.cacheTtlMs ?? 5000;
  // Keyed by a digest, so the process never holds plaintext keys longer than a request.
  const cache =
    ttl > 0 ? new LRUCache<string, RegistryPrincipal>({ max: options.maxEntries ?? 10_000, ttl, ttlAutopurge: false }) : undefined;
  const body = { product: options.product, ...(options.scope ? { scope: options.scope } : {}) };
  const inFlight = new Map<string, ReturnType<typeof verify>>();

  return {
    async check(headers) {
      const key = keyFrom(headers);
      if (!key) return refusal(401, "missing_key", "Send an API key as `Authorization: Bearer bp_…` or `X-API-Key`.");
      const digest = createHash("sha256").update(key).digest("base64url");
      const cached = cache?.get(digest);
      if (cached) return { ok: true, principal: cached };
      // Concurrent requests with one uncached key share a single verify call.
      let pending = inFlight.get(digest);
      if (!pending) {
        pending = verify(key).finally(() => inFlight.delete(digest));
        inFlight.set(digest, pending);
      }
      let answer: Awaited<ReturnType<typeof verify>>;
      try {
        answer = await pending;
      } catch (err) {
        // Failing closed: a product that cannot ask the registry lets nobody in.
        const detail =
          err instanceof RegistryError ? `The key registry did not answer (${err.problem.detail}).` : "The key registry did not answer.";
        return refusal(503, "registry_unavailable", detail);
      }
      if (!answer.valid) {
        const status = FORBIDDEN_REASONS.has(answer.reason) ? 403 : 401;
        return refusal(status, answer.reason, `The API key was refused: ${answer.reason}.`);
      }
      const principal = { tenant_id: answer.tenant_id, key_id: answer.key_id, scopes: answer.scopes };
      if (cache) {
        // Never cache past the key's own expiry.
        const left = answer.expires_at ? Date.parse(answer.expires_at) - Date.now() : ttl;
        if (left > 0) cache.set(digest, principal, { ttl: Math.min(ttl, left) });
      }
      return { ok: true, principal };
    },
  };

  function verify(key: string) {
    return ok(client.POST("/v1/internal/api-keys/verify", { body: { key, ...body } }));
  }
}

declare module "fastify" {
  interface FastifyRequest {
    /** Set by registryAuthHook once the request's API key verified. */
    registryAuth?: RegistryPrincipal;
  }
}

/** A Fastify onRequest/preHandler hook: `app.addHook("onRequest", registryAuthHook({...}))`; sets `request.registryAuth`. */
export function registryAuthHook(options: RegistryAuthOptions) {
  const checker = createKeyChecker(options);
  return async function registryAuthHook(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const result = await checker.check(request.headers);
    if (result.ok) {
      request.registryAuth = result.principal;
      return;
    }
    if (result.problem.status === 401) reply.header("www-authenticate", 'Bearer realm="api"');
    if (result.problem.status === 503) reply.header("retry-after", "1");
    await reply.code(result.problem.status).type("application/problem+json").send(result.problem);
  };
}

/** A request as Express and plain node:http give it, with the principal attached once verified. */
export type RegistryAuthRequest = IncomingMessage & { registryAuth?: RegistryPrincipal };

/** Express-style middleware `(req, res, next)`, also usable with plain node:http; sets `req.registryAuth`. */
export function registryAuth(options: RegistryAuthOptions) {
  const checker = createKeyChecker(options);
  return function registryAuthMiddleware(req: RegistryAuthRequest, res: ServerResponse, next: (err?: unknown) => void): void {
    checker.check(req.headers).then((result) => {
      if (result.ok) {
        req.registryAuth = result.principal;
        next();
        return;
      }
      const headers: Record<string, string> = { "content-type": "application/problem+json" };
      if (result.problem.status === 401) headers["www-authenticate"] = 'Bearer realm="api"';
      if (result.problem.status === 503) headers["retry-after"] = "1";
      res.writeHead(result.problem.status, headers).end(JSON.stringify(result.problem));
    }, next);
  };
}
