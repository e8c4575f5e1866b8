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
  const ttl = options.cacheTtlMs ?? 1000;
  const feed = options.changes === false || ttl <= 0 ? undefined : new ChangeFeed(options);
  const liveTtl = feed ? Math.max(options.liveCacheTtlMs ?? 60_000, ttl) : ttl;
  // Keyed by a digest, so the process never holds plaintext keys longer than a request.
  const cache = ttl > 0 ? new TtlCache<Cached>({ max: options.maxEntries ?? 10_000, ttl: liveTtl }) : undefined;
  if (feed && cache) {
    feed.onInvalidate = (change) => {
      if (typeof change.key_id === "string" || typeof change.tenant_id === "string") {
        cache.deleteWhere((entry) => entry.principal.key_id === change.key_id || entry.principal.tenant_id === change.tenant_id);
      } else cache.clear();
    };
  }
  const body = { product: options.product, ...(options.scope ? { scope: options.scope } : {}) };
  const inFlight = new Map<string, ReturnType<typeof verify>>();

  return {
    live: () => feed?.live() ?? false,
    close: () => feed?.close(),
    async check(headers) {
      const key = keyFrom(headers);
      if (!key) return refusal(401, "missing_key", "Send an API key as `Authorization: Bearer bp_…` or `X-API-Key`.");
      feed?.start();
      const digest = createHash("sha256").update(key).digest("base64url");
      const cached = cache?.get(digest);
      if (cached) {
        // Trusted for as long as the feed's state allows now, whenever it was stored.
        if (Date.now() - cached.at <= (feed?.live() ? liveTtl : ttl)) return { ok: true, principal: cached.principal };
        cache?.delete(digest);
      }
      // An answer is kept only if no notice arrived while it was being fetched: it may predate the change.
      const epoch = feed?.epoch ?? 0;
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
      if (cache && (feed?.epoch ?? 0) === epoch) {
        // Never cache past the key's own expiry.
        const left = answer.expires_at ? Date.parse(answer.expires_at) - Date.now() : liveTtl;
        if (left > 0) cache.set(digest, { principal, at: Date.now() }, { ttl: Math.min(liveTtl, left) });
      }
      return { ok: true, principal };
    },
  };

  function verify(key: string) {
    return ok(client.POST("/v1/internal/api-keys/verify", { body: { key, ...body } }));
  }
}

interface Cached {
  principal: RegistryPrincipal;
  /** When it was stored: how long it is trusted depends on the feed's state when it is read. */
  at: number;
}

/** Heartbeats this far apart mean the feed is not live (the registry sends one at least every second). */
const FEED_SILENCE_MS = 2000;

/**
 * The registry's change feed (GET /v1/internal/changes, server-sent events),
 * read with fetch: `invalidate` notices name a key or tenant whose cached
 * answers must go; heartbeats prove the feed is live. Reconnects after a
 * drop or 2 s of silence; each (re)connection drops every cached answer, as
 * notices may have been missed meanwhile.
 */
class ChangeFeed {
  onInvalidate: (change: { key_id?: unknown; tenant_id?: unknown }) => void = () => {};
  /** Bumped by every notice and every change of liveness. */
  epoch = 0;
  private lastBeat = 0;
  private connectedAt = 0;
  private started = false;
  private stopped = false;
  private abort: AbortController | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly options: RegistryAuthOptions) {}

  live(): boolean {
    return this.lastBeat > 0 && Date.now() - this.lastBeat <= FEED_SILENCE_MS;
  }

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.watchdog = setInterval(() => {
      if (this.abort && Date.now() - Math.max(this.lastBeat, this.connectedAt) > FEED_SILENCE_MS) this.abort.abort();
    }, 250);
    this.watchdog.unref?.();
    void this.run();
  }

  close(): void {
    this.stopped = true;
    if (this.watchdog) clearInterval(this.watchdog);
    this.abort?.abort();
  }

  private beat(): void {
    if (!this.live()) {
      // Live again: whatever was cached before may have missed a notice.
      this.epoch++;
      this.onInvalidate({});
    }
    this.lastBeat = Date.now();
  }

  private async run(): Promise<void> {
    const doFetch = this.options.fetch ?? fetch;
    const url = `${this.options.url.replace(/\/+$/, "")}/v1/internal/changes`;
    while (!this.stopped) {
      this.abort = new AbortController();
      const started = Date.now();
      // Silence counts from the moment of connecting: a feed that never beats is cut after 2 s.
      this.connectedAt = started;
      try {
        const res = await doFetch(url, {
          headers: { authorization: `Bearer ${this.options.token}`, accept: "text/event-stream" },
          signal: this.abort.signal,
        });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        const decoder = new TextDecoder();
        let buf = "";
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          for (let cut = buf.indexOf("\n\n"); cut >= 0; cut = buf.indexOf("\n\n")) {
            this.message(buf.slice(0, cut));
            buf = buf.slice(cut + 2);
          }
        }
      } catch {
        // Dropped, refused or silent: reconnect below.
      }
      this.abort = null;
      if (this.lastBeat !== 0) {
        this.lastBeat = 0;
        this.epoch++;
      }
      if (this.stopped) return;
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))).unref?.());
    }
  }

  private message(block: string): void {
    let event = "message";
    let data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
    if (event === "heartbeat") this.beat();
    else if (event === "invalidate") {
      this.epoch++;
      let change: { key_id?: unknown; tenant_id?: unknown } = {};
      try {
        const v: unknown = JSON.parse(data);
        if (typeof v === "object" && v !== null) change = v;
      } catch {
        // Unreadable: drop everything.
      }
      this.onInvalidate(change);
    }
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
  const hook = async function registryAuthHook(request: HookRequest, reply: HookReply): Promise<void> {
    const result = await checker.check(request.headers);
    if (result.ok) {
      request.registryAuth = result.principal;
      return;
    }
    reply.headers(refusalHeaders(result.problem.status));
    await reply.code(result.problem.status).send(result.problem);
  };
  // close(): stop following the registry's change feed (e.g. in the app's onClose).
  return Object.assign(hook, { close: () => checker.close() });
}

/** What registryAuthFetch answers: the key's principal, or a problem response to send back as it is. */
export type RegistryAuthFetchResult = { principal: RegistryPrincipal } | { response: Response };

/**
 * For fetch-API handlers (Hono, itty-router, Next.js route handlers, Deno and
 * Bun servers): `const auth = registryAuthFetch({...})`, then in a handler
 * `const r = await auth(request); if ("response" in r) return r.response;`.
 */
export function registryAuthFetch(
  options: RegistryAuthOptions,
): ((request: Request) => Promise<RegistryAuthFetchResult>) & { close(): void } {
  const checker = createKeyChecker(options);
  const handler = async function registryAuthFetch(request: Request): Promise<RegistryAuthFetchResult> {
    const result = await checker.check(request.headers);
    if (result.ok) return { principal: result.principal };
    const { status } = result.problem;
    return { response: new Response(JSON.stringify(result.problem), { status, headers: refusalHeaders(status) }) };
  };
  // close(): stop following the registry's change feed.
  return Object.assign(handler, { close: () => checker.close() });
}

/** A request as Express and plain node:http give it, with the principal attached once verified. */
export type RegistryAuthRequest = IncomingMessage & { registryAuth?: RegistryPrincipal };

/** Express-style middleware `(req, res, next)`, also usable with plain node:http; sets `req.registryAuth`. */
export function registryAuth(options: RegistryAuthOptions) {
  const checker = createKeyChecker(options);
  const middleware = function registryAuthMiddleware(req: RegistryAuthRequest, res: ServerResponse, next: (err?: unknown) => void): void {
    checker.check(req.headers).then((result) => {
      if (result.ok) {
        req.registryAuth = result.principal;
        next();
        return;
      }
      res.writeHead(result.problem.status, refusalHeaders(result.problem.status)).end(JSON.stringify(result.problem));
    }, next);
  };
  // close(): stop following the registry's change feed.
  return Object.assign(middleware, { close: () => checker.close() });
}
