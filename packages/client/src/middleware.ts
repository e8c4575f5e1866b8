import { createHash } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { createRegistryClient, ok, type Problem, RegistryError } from "./registry-client.js";
import { TtlCache } from "./ttl-cache.js";

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

/** Request headers as node:http gives them, or a fetch-API `Headers`. */
export type RequestHeaders = IncomingHttpHeaders | Headers;

export interface KeyChecker {
  check(headers: RequestHeaders): Promise<KeyCheck>;
}

const FORBIDDEN_REASONS = new Set(["product_mismatch", "not_entitled", "insufficient_scope"]);

const PROBLEMS = {
  401: { code: "unauthorized", title: "Unauthorized" },
  403: { code: "forbidden", title: "Forbidden" },
  500: { code: "internal", title: "Internal Server Error" },
  503: { code: "unavailable", title: "Service Unavailable" },
} as const;

function refusal(status: keyof typeof PROBLEMS, reason: string, detail: string): KeyCheck {
  const { code, title } = PROBLEMS[status];
  return { ok: false, problem: { type: `urn:tenant-registry:problem:${code}`, title, status, detail, code, reason } };
}

function header(headers: RequestHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const value = (headers as IncomingHttpHeaders)[name];
  return Array.isArray(value) ? value[0] : value;
}

function keyFrom(headers: RequestHeaders): string | undefined {
  const auth = header(headers, "authorization");
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m?.[1]) return m[1];
  }
  return header(headers, "x-api-key")?.trim() || undefined;
}

/**
 * Why a verify call failed, as the product's caller should hear it. A 401 or
 * 403 from the registry means the registry refused this service's own token:
 * a configuration error of the product, not an outage, so it is not
 * reported as "the registry did not answer".
 */
function failure(err: unknown): KeyCheck {
  if (err instanceof RegistryError && (err.status === 401 || err.status === 403)) {
    return refusal(
      500,
      "registry_token_refused",
      `The key registry refused this service's token (${err.status} ${err.problem.title}: ${err.problem.detail}). ` +
        "The service must be configured with a registry token of role service.",
    );
  }
  // Failing closed: a product that cannot ask the registry lets nobody in.
  const detail =
    err instanceof RegistryError ? `The key registry did not answer (${err.problem.detail}).` : "The key registry did not answer.";
  return refusal(503, "registry_unavailable", detail);
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
  const cache = ttl > 0 ? new TtlCache<RegistryPrincipal>({ max: options.maxEntries ?? 10_000, ttl }) : undefined;
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
        return failure(err);
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

/** The response headers of a refusal: a problem body, a challenge on 401, a retry hint on 503. */
function refusalHeaders(status: number): Record<string, string> {
  const headers: Record<string, string> = { "content-type": "application/problem+json" };
  if (status === 401) headers["www-authenticate"] = 'Bearer realm="api"';
  if (status === 503) headers["retry-after"] = "1";
  return headers;
}

/** What registryAuthHook uses of Fastify's request and reply (the package does not depend on Fastify). */
export interface HookRequest {
  headers: IncomingHttpHeaders;
  registryAuth?: RegistryPrincipal;
}
export interface HookReply {
  headers(values: Record<string, string>): unknown;
  code(statusCode: number): HookReply;
  send(payload?: unknown): unknown;
}

/**
 * A Fastify onRequest/preHandler hook: `app.addHook("onRequest", registryAuthHook({...}))`; sets `request.registryAuth`.
 * The package does not depend on Fastify, so TypeScript users declare the field once:
 * `declare module "fastify" { interface FastifyRequest { registryAuth?: RegistryPrincipal } }`.
 */
export function registryAuthHook(options: RegistryAuthOptions) {
  const checker = createKeyChecker(options);
  return async function registryAuthHook(request: HookRequest, reply: HookReply): Promise<void> {
    const result = await checker.check(request.headers);
    if (result.ok) {
      request.registryAuth = result.principal;
      return;
    }
    reply.headers(refusalHeaders(result.problem.status));
    await reply.code(result.problem.status).send(result.problem);
  };
}

/** What registryAuthFetch answers: the key's principal, or a problem response to send back as it is. */
export type RegistryAuthFetchResult = { principal: RegistryPrincipal } | { response: Response };

/**
 * For fetch-API handlers (Hono, itty-router, Next.js route handlers, Deno and
 * Bun servers): `const auth = registryAuthFetch({...})`, then in a handler
 * `const r = await auth(request); if ("response" in r) return r.response;`.
 */
export function registryAuthFetch(options: RegistryAuthOptions): (request: Request) => Promise<RegistryAuthFetchResult> {
  const checker = createKeyChecker(options);
  return async function registryAuthFetch(request: Request): Promise<RegistryAuthFetchResult> {
    const result = await checker.check(request.headers);
    if (result.ok) return { principal: result.principal };
    const { status } = result.problem;
    return { response: new Response(JSON.stringify(result.problem), { status, headers: refusalHeaders(status) }) };
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
      res.writeHead(result.problem.status, refusalHeaders(result.problem.status)).end(JSON.stringify(result.problem));
    }, next);
  };
}
