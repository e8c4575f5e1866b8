import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { ChangeFeed } from "./change-feed.js";
import { type CachedKey, KeyCache } from "./key-cache.js";
import { createRegistryClient, ok, type Problem, RegistryError } from "./registry-client.js";

/**
 * What the middleware tells the product's log and not the product's
 * callers: the registry's address, the network error, the registry's own
 * problem. `request_id` is also in the problem the caller received.
 */
export interface RegistryAuthLogDetails {
  request_id: string;
  /** The reason the caller was given, e.g. `registry_unavailable`. */
  reason: string;
  /** The registry's base URL. */
  registry: string;
  /** The error from the network or the registry (its problem title and detail, and its own request id). */
  error: string;
  /** The registry's answer status, when it answered. */
  status?: number;
  /** The registry's own request id, when it answered with one. */
  registry_request_id?: string;
}

/** Where the middleware reports what it does not tell callers. */
export type RegistryAuthLogger = (message: string, details: RegistryAuthLogDetails) => void;

export interface RegistryAuthOptions {
  /** Base URL of the registry. Required: building the middleware without it throws. */
  url: string;
  /** A registry token of role `service` (it may verify keys). Required: building the middleware without it throws. */
  token: string;
  /** The product this service is: keys must be for it (or for all products) and the tenant entitled to it. Required. */
  product: string;
  /** A scope every request must hold. */
  scope?: string;
  /**
   * How long a positive answer is reused while the registry's change feed is
   * not live (default 1000 ms), or always when `changes` is false. This is
   * the staleness bound then: a key revoked, expired or whose tenant was
   * cancelled keeps working at this product for up to this long. 0 disables
   * the cache.
   */
  cacheTtlMs?: number;
  /**
   * Subscribe to the registry's change feed (GET /v1/internal/changes) and
   * drop cached answers when it says a key or tenant changed (default true).
   * While the feed is live, answers are reused for up to `liveCacheTtlMs`;
   * when its heartbeats stop for 2 s, for at most `cacheTtlMs` again.
   */
  changes?: boolean;
  /** How long a positive answer is reused while the change feed is live (default 60000 ms). */
  liveCacheTtlMs?: number;
  /**
   * Most keys kept in the cache (default 10,000). When full, the oldest
   * entry goes, unless it was used since the last eviction pass (it then
   * gets a second chance): close to least-recently-used.
   */
  maxEntries?: number;
  /** Give up on the registry after this long and answer 503 (default 2000 ms). */
  timeoutMs?: number;
  /**
   * Receives what the product's callers are not told when the registry
   * cannot be asked: its address, the network error, its own problem
   * detail, under the request id the caller was given. Default: one
   * `console.error` line per failed verify call.
   */
  logger?: RegistryAuthLogger;
  fetch?: typeof fetch;
}

/** What a verified request carries. */
export interface RegistryPrincipal {
  tenant_id: string;
  key_id: string;
  scopes: string[];
}

/**
 * A refusal carries `reason` (the verify reason, or `missing_key`) and a
 * `request_id` (also in the product's log when the registry could not be
 * asked) beside the usual problem fields.
 */
export type KeyCheck =
  | { ok: true; principal: RegistryPrincipal }
  | { ok: false; problem: Problem & { reason: string; request_id: string } };

/** Request headers as node:http gives them, or a fetch-API `Headers`. */
export type RequestHeaders = IncomingHttpHeaders | Headers;

export interface KeyChecker {
  check(headers: RequestHeaders): Promise<KeyCheck>;
  /** True while the change feed is live (heartbeats within the last 2 s). */
  live(): boolean;
  /** Stop following the change feed (it starts with the first check). */
  close(): void;
}

const FORBIDDEN_REASONS = new Set(["product_mismatch", "not_entitled", "insufficient_scope"]);

const PROBLEMS = {
  401: { code: "unauthorized", title: "Unauthorized" },
  403: { code: "forbidden", title: "Forbidden" },
  500: { code: "internal", title: "Internal Server Error" },
  503: { code: "unavailable", title: "Service Unavailable" },
} as const;

type Refusal = Extract<KeyCheck, { ok: false }>;

function refusal(status: keyof typeof PROBLEMS, reason: string, detail: string, request_id: string = randomUUID()): Refusal {
  const { code, title } = PROBLEMS[status];
  return { ok: false, problem: { type: `urn:tenant-registry:problem:${code}`, title, status, detail, code, reason, request_id } };
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const WHITESPACE = /\s/;

function bearer(auth: string): string | undefined {
  // The common form without a regex match (no match array); anything else goes through the full pattern.
  if (auth.startsWith("Bearer ") && auth.length > 7) {
    const key = auth.slice(7);
    if (!WHITESPACE.test(key)) return key;
  }
  return BEARER.exec(auth)?.[1] || undefined;
}

function keyOf(auth: string | undefined, apiKey: string | undefined): string | undefined {
  if (auth) {
    const key = bearer(auth);
    if (key) return key;
  }
  return apiKey?.trim() || undefined;
}

function keyFrom(headers: RequestHeaders): string | undefined {
  if (typeof (headers as Headers).get === "function") {
    const h = headers as Headers;
    return keyOf(h.get("authorization") ?? undefined, h.get("x-api-key") ?? undefined);
  }
  const h = headers as IncomingHttpHeaders;
  const apiKey = h["x-api-key"];
  return keyOf(h.authorization, Array.isArray(apiKey) ? apiKey[0] : apiKey);
}

/** `name` equals `lower` (already lower case) ignoring ASCII case, without allocating. */
function sameName(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  if (name === lower) return true;
  for (let i = 0; i < lower.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/**
 * The key of a node:http request, read from `rawHeaders`: node builds
 * `req.headers` lazily, on first access, and that object is most of what
 * reading two headers would cost. Undefined: no key; null: a repeated
 * x-api-key (node would join them), left to `req.headers` to decide.
 */
function keyFromRaw(raw: string[]): string | undefined | null {
  let auth: string | undefined;
  let apiKey: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 13 && sameName(name, "authorization")) {
      // Node keeps the first Authorization header and drops the others.
      auth ??= raw[i + 1];
    } else if (name.length === 9 && sameName(name, "x-api-key")) {
      if (apiKey !== undefined) return null;
      apiKey = raw[i + 1];
    }
  }
  return keyOf(auth, apiKey);
}

/** What the three adapters share: a synchronous cache lookup, and the full check behind it. */
interface Core extends KeyChecker {
  /** The principal of a cached, still trusted positive answer for `key`, or undefined. Synchronous. */
  cached(key: string): RegistryPrincipal | undefined;
  /** The full check of an extracted key: the cache, else one verify call shared by concurrent requests. */
  resolve(key: string | undefined): Promise<KeyCheck>;
}

function required(options: RegistryAuthOptions | undefined, name: "url" | "token" | "product", what: string): string {
  const value = options?.[name];
  if (typeof value !== "string" || value.trim() === "") {
    throw new TypeError(
      `@tenant-registry/client: the option \`${name}\` is required (${what}); it is ${value === "" ? "empty" : "missing"}`,
    );
  }
  return value;
}

function defaultLogger(message: string, details: RegistryAuthLogDetails): void {
  console.error(`@tenant-registry/client: ${message}`, details);
}

function createCore(options: RegistryAuthOptions): Core {
  const url = required(options, "url", "the registry's base URL, e.g. http://127.0.0.1:8080");
  try {
    new URL(url);
  } catch {
    throw new TypeError("@tenant-registry/client: the option `url` is not a URL (the registry's base URL, e.g. http://127.0.0.1:8080)");
  }
  const token = required(options, "token", "a registry token of role service");
  const product = required(options, "product", "the product this service is");
  const logger = options.logger ?? defaultLogger;
  const client = createRegistryClient({ url, token, timeoutMs: options.timeoutMs ?? 2000, fetch: options.fetch });
  const ttl = options.cacheTtlMs ?? 1000;
  const feed = options.changes === false || ttl <= 0 ? undefined : new ChangeFeed({ url, token, fetch: options.fetch });
  const liveTtl = feed ? Math.max(options.liveCacheTtlMs ?? 60_000, ttl) : ttl;
  // Keyed by the key itself, as it arrives on every request anyway (see "Cost at the product" in docs/api-keys.md).
  const cache = ttl > 0 ? new KeyCache(options.maxEntries ?? 10_000) : undefined;
  if (feed && cache) {
    feed.onInvalidate = (change) => {
      if (typeof change.key_id === "string" || typeof change.tenant_id === "string") {
        cache.deleteWhere((entry) => entry.principal.key_id === change.key_id || entry.principal.tenant_id === change.tenant_id);
      } else cache.clear();
    };
  }
  const body = { product, ...(options.scope ? { scope: options.scope } : {}) };
  // Concurrent requests with one uncached key share a single verify call, and so one answer (one request id on failure).
  const inFlight = new Map<string, Promise<KeyCheck>>();

  function cached(key: string): RegistryPrincipal | undefined {
    const entry = cache?.get(key);
    if (entry === undefined) return undefined;
    const now = Date.now();
    // Trusted for as long as the feed's state allows now, whenever it was stored.
    if (now < entry.expires && (now - entry.at <= ttl || feed?.live(now))) {
      entry.hot = true;
      return entry.principal;
    }
    cache?.delete(key);
    return undefined;
  }

  async function ask(key: string): Promise<KeyCheck> {
    // An answer is kept only if no notice arrived while it was being fetched: it may predate the change.
    const epoch = feed?.epoch ?? 0;
    let answer: Awaited<ReturnType<typeof verify>>;
    try {
      answer = await verify(key);
    } catch (err) {
      return failure(err);
    }
    if (!answer.valid) {
      const status = FORBIDDEN_REASONS.has(answer.reason) ? 403 : 401;
      return refusal(status, answer.reason, `The API key was refused: ${answer.reason}.`);
    }
    const principal = { tenant_id: answer.tenant_id, key_id: answer.key_id, scopes: answer.scopes };
    if (cache && (feed?.epoch ?? 0) === epoch) {
      const at = Date.now();
      // Never cached past the key's own expiry.
      const expires = Math.min(at + liveTtl, answer.expires_at ? Date.parse(answer.expires_at) : Number.POSITIVE_INFINITY);
      if (expires > at) cache.set(key, { principal, at, expires, hot: false } satisfies CachedKey);
    }
    return { ok: true, principal };
  }

  /**
   * Why a verify call failed, as the product's caller hears it: the reason
   * and a request id, never the registry's address, a network error or the
   * registry's own detail text; those go to the product's log. A 401 or 403
   * from the registry means it refused this service's own token: a
   * configuration error of the product, not an outage.
   */
  function failure(err: unknown): KeyCheck {
    const request_id = randomUUID();
    const problem = err instanceof RegistryError ? err.problem : undefined;
    const details: RegistryAuthLogDetails = {
      request_id,
      reason: "registry_unavailable",
      registry: url,
      error: problem ? `${problem.title}: ${problem.detail}` : err instanceof Error ? err.message : String(err),
      ...(problem && problem.code !== "unavailable" ? { status: problem.status } : {}),
      ...(problem?.request_id ? { registry_request_id: problem.request_id } : {}),
    };
    if (problem && (problem.status === 401 || problem.status === 403)) {
      details.reason = "registry_token_refused";
      logger("the key registry refused this service's token; configure a registry token of role service", details);
      return refusal(
        500,
        "registry_token_refused",
        `The key registry refused this service's token (${problem.status}). ` +
          "The service must be configured with a registry token of role service.",
        request_id,
      );
    }
    // Failing closed: a product that cannot ask the registry lets nobody in.
    logger("the key registry did not answer a verify call; the request was refused with 503", details);
    return refusal(503, "registry_unavailable", "The key registry did not answer; try again shortly.", request_id);
  }

  function verify(key: string) {
    return ok(client.POST("/v1/internal/api-keys/verify", { body: { key, ...body } }));
  }

  async function resolve(key: string | undefined): Promise<KeyCheck> {
    if (key === undefined) return refusal(401, "missing_key", "Send an API key as `Authorization: Bearer bp_…` or `X-API-Key`.");
    feed?.start();
    const principal = cached(key);
    if (principal) return { ok: true, principal };
    let pending = inFlight.get(key);
    if (!pending) {
      pending = ask(key).finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    return pending;
  }

  return {
    cached,
    resolve,
    check: (headers) => resolve(keyFrom(headers)),
    live: () => feed?.live() ?? false,
    close: () => feed?.close(),
  };
}

/** The framework-free core of the middleware: headers in, a principal or a problem out. Throws without `url`, `token` or `product`. */
export function createKeyChecker(options: RegistryAuthOptions): KeyChecker {
  const { check, live, close } = createCore(options);
  return { check, live, close };
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
 * A callback-style hook, so that a cached answer goes on synchronously, with no promise.
 * The package does not depend on Fastify, so TypeScript users declare the field once:
 * `declare module "fastify" { interface FastifyRequest { registryAuth?: RegistryPrincipal } }`.
 * Throws at once without `url`, `token` or `product`.
 */
export function registryAuthHook(options: RegistryAuthOptions) {
  const core = createCore(options);
  const hook = function registryAuthHook(request: HookRequest, reply: HookReply, done: (err?: Error) => void): void {
    const key = keyFrom(request.headers);
    const principal = key === undefined ? undefined : core.cached(key);
    if (principal) {
      request.registryAuth = principal;
      done();
      return;
    }
    core.resolve(key).then((result) => {
      if (result.ok) {
        request.registryAuth = result.principal;
        done();
        return;
      }
      // Answered here: Fastify goes no further, so done() is not called.
      reply.headers(refusalHeaders(result.problem.status));
      reply.code(result.problem.status).send(result.problem);
    }, done);
  };
  // close(): stop following the registry's change feed (e.g. in the app's onClose); live(): whether it is live now.
  return Object.assign(hook, { close: () => core.close(), live: () => core.live() });
}

/** What registryAuthFetch answers: the key's principal, or a problem response to send back as it is. */
export type RegistryAuthFetchResult = { principal: RegistryPrincipal } | { response: Response };

/**
 * For fetch-API handlers (Hono, itty-router, Next.js route handlers, Deno and
 * Bun servers): `const auth = registryAuthFetch({...})`, then in a handler
 * `const r = await auth(request); if ("response" in r) return r.response;`.
 * Throws at once without `url`, `token` or `product`.
 */
export function registryAuthFetch(
  options: RegistryAuthOptions,
): ((request: Request) => Promise<RegistryAuthFetchResult>) & { close(): void; live(): boolean } {
  const core = createCore(options);
  const handler = async function registryAuthFetch(request: Request): Promise<RegistryAuthFetchResult> {
    const key = keyFrom(request.headers);
    const principal = key === undefined ? undefined : core.cached(key);
    if (principal) return { principal };
    const result = await core.resolve(key);
    if (result.ok) return { principal: result.principal };
    const { status } = result.problem;
    return { response: new Response(JSON.stringify(result.problem), { status, headers: refusalHeaders(status) }) };
  };
  // close(): stop following the registry's change feed; live(): whether it is live now.
  return Object.assign(handler, { close: () => core.close(), live: () => core.live() });
}

/** A request as Express and plain node:http give it, with the principal attached once verified. */
export type RegistryAuthRequest = IncomingMessage & { registryAuth?: RegistryPrincipal };

/**
 * Express-style middleware `(req, res, next)`, also usable with plain node:http; sets `req.registryAuth`.
 * A cached answer calls next() synchronously. Throws at once without `url`, `token` or `product`.
 */
export function registryAuth(options: RegistryAuthOptions) {
  const core = createCore(options);
  const middleware = function registryAuthMiddleware(req: RegistryAuthRequest, res: ServerResponse, next: (err?: unknown) => void): void {
    // rawHeaders when node gives them (a real IncomingMessage), else the headers object (tests, other servers).
    const raw = Array.isArray(req.rawHeaders) ? keyFromRaw(req.rawHeaders) : null;
    const key = raw === null ? keyFrom(req.headers) : raw;
    const principal = key === undefined ? undefined : core.cached(key);
    if (principal) {
      req.registryAuth = principal;
      next();
      return;
    }
    core.resolve(key).then((result) => {
      if (result.ok) {
        req.registryAuth = result.principal;
        next();
        return;
      }
      res.writeHead(result.problem.status, refusalHeaders(result.problem.status)).end(JSON.stringify(result.problem));
    }, next);
  };
  // close(): stop following the registry's change feed; live(): whether it is live now.
  return Object.assign(middleware, { close: () => core.close(), live: () => core.live() });
}
