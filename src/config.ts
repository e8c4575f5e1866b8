import { availableParallelism } from "node:os";
import { type Static, Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import type { Role } from "./domain/roles.js";
import { ROLES } from "./domain/roles.js";

/**
 * Every setting the service reads, validated once at start. Nothing else in
 * the code reads process.env.
 */
const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  HOST: Type.String({ minLength: 1, default: "127.0.0.1" }),
  HTTP_HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600000, default: 10000 }),
  HTTP_REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 0, maximum: 3600000, default: 30000 }),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600000, default: 72000 }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: "^(postgres(ql)?://.+|memory:)$" })),
  MIGRATION_DATABASE_URL: Type.Optional(Type.String({ pattern: "^postgres(ql)?://.+$" })),
  MIGRATION_LOCK_TIMEOUT_MS: Type.Integer({ minimum: 0, maximum: 86400000, default: 60000 }),
  MIGRATION_STATEMENT_TIMEOUT_MS: Type.Integer({ minimum: 0, maximum: 86400000, default: 0 }),
  DATA_DIR: Type.String({ minLength: 1, default: "./data" }),
  REGISTRY_ADMIN_TOKEN: Type.Optional(Type.String()),
  REGISTRY_TOKENS: Type.Optional(Type.String()),
  LOG_LEVEL: Type.Union(
    ["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((l) => Type.Literal(l)),
    { default: "info" },
  ),
  CATALOG_FILE: Type.Optional(Type.String({ minLength: 1 })),
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 200, default: 10 }),
  DATABASE_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600000, default: 5000 }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600000, default: 10000 }),
  AUTH_FAILURE_LIMIT: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 60 }),
  TRUST_PROXY: Type.String({ default: "false" }),
  TRIAL_SWEEP_INTERVAL_MS: Type.Integer({ minimum: 1000, maximum: 86400000, default: 60000 }),
  ARGON2_THREADS: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  ARGON2_QUEUE: Type.Integer({ minimum: 0, maximum: 10000, default: 64 }),
  WEBHOOK_ALLOW_PRIVATE: Type.Union([Type.Literal("true"), Type.Literal("false")], { default: "false" }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60000, default: 10000 }),
  WEBHOOK_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 8 }),
  WEBHOOK_RETRY_BASE_MS: Type.Integer({ minimum: 1, maximum: 3600000, default: 5000 }),
  WEBHOOK_RETRY_MAX_MS: Type.Integer({ minimum: 1, maximum: 86400000, default: 3600000 }),
  WEBHOOK_RETRY_WINDOW_MS: Type.Integer({ minimum: 1, maximum: 2592000000, default: 86400000 }),
  WEBHOOK_POLL_MS: Type.Integer({ minimum: 10, maximum: 600000, default: 1000 }),
  WEBHOOK_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 30 }),
  OIDC_ISSUER: Type.Optional(Type.String({ pattern: "^https?://[^\\s]+$" })),
  OIDC_CLIENT_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
  OIDC_CLIENT_SECRET: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
  PUBLIC_URL: Type.Optional(Type.String({ pattern: "^https?://[^\\s]+$" })),
  OIDC_ROLE_CLAIM: Type.String({ minLength: 1, maxLength: 200, default: "groups" }),
  OIDC_ADMIN_VALUES: Type.String({ default: "" }),
  OIDC_AUDITOR_VALUES: Type.String({ default: "" }),
  OIDC_SCOPES: Type.String({ default: "" }),
  SESSION_IDLE_MINUTES: Type.Number({ exclusiveMinimum: 0, maximum: 43200, default: 60 }),
  SESSION_MAX_HOURS: Type.Number({ exclusiveMinimum: 0, maximum: 8760, default: 12 }),
});

const HINTS: Record<string, string> = {
  PORT: "an integer from 0 to 65535, e.g. PORT=8080",
  HTTP_HEADERS_TIMEOUT_MS: "milliseconds a client may take to send the request headers, from 1000 to 600000",
  HTTP_REQUEST_TIMEOUT_MS: "milliseconds a client may take to send the whole request (0: no limit), from 0 to 3600000",
  HTTP_KEEP_ALIVE_TIMEOUT_MS: "milliseconds an idle keep-alive connection stays open, from 1000 to 600000",
  DATABASE_URL: "a postgres:// or postgresql:// URL, or memory:, or unset for the embedded store",
  MIGRATION_DATABASE_URL: "a postgres:// or postgresql:// URL of the role that owns the schema (default: DATABASE_URL)",
  MIGRATION_LOCK_TIMEOUT_MS: "milliseconds a migration waits for a lock (0: no limit), from 0 to 86400000",
  MIGRATION_STATEMENT_TIMEOUT_MS: "milliseconds a migration statement may run (0: no limit), from 0 to 86400000",
  LOG_LEVEL: "one of fatal, error, warn, info, debug, trace, silent",
  DATABASE_POOL_SIZE: "an integer from 1 to 200",
  DATABASE_TIMEOUT_MS: "milliseconds, from 100 to 600000",
  SHUTDOWN_TIMEOUT_MS: "milliseconds, from 100 to 600000",
  AUTH_FAILURE_LIMIT: "failed authentications per client address per minute, an integer of at least 1",
  TRUST_PROXY:
    "false, the number of proxies in front (e.g. 1), or comma-separated proxy addresses/CIDRs (e.g. 10.0.0.0/8); " +
    "true is refused: it would believe the left-most X-Forwarded-For entry, which any client writes",
  TRIAL_SWEEP_INTERVAL_MS: "milliseconds, from 1000 to 86400000",
  ARGON2_THREADS: "an integer from 1 to 64 (default: the number of CPUs)",
  ARGON2_QUEUE: "an integer from 0 to 10000",
  WEBHOOK_ALLOW_PRIVATE: "true or false",
  WEBHOOK_TIMEOUT_MS: "milliseconds, from 100 to 60000",
  WEBHOOK_CONCURRENCY: "an integer from 1 to 256",
  WEBHOOK_RETRY_BASE_MS: "milliseconds, from 1 to 3600000",
  WEBHOOK_RETRY_MAX_MS: "milliseconds, from 1 to 86400000",
  WEBHOOK_RETRY_WINDOW_MS: "milliseconds, from 1 to 2592000000",
  WEBHOOK_POLL_MS: "milliseconds, from 10 to 600000",
  WEBHOOK_RETENTION_DAYS: "days, from 1 to 3650",
  OIDC_ISSUER: "the identity provider's issuer URL (https://...), as its /.well-known/openid-configuration names it",
  OIDC_CLIENT_ID: "the client id the identity provider gave the registry",
  OIDC_CLIENT_SECRET: "the client secret (unset for a public client)",
  PUBLIC_URL: "the registry's external base URL, e.g. https://registry.example.com",
  OIDC_ROLE_CLAIM: "the name of the claim that carries roles or groups, e.g. groups",
  SESSION_IDLE_MINUTES: "minutes a session may go unused, more than 0 (fractions allowed), at most 43200",
  SESSION_MAX_HOURS: "hours a session may last at most, more than 0 (fractions allowed), at most 8760",
};

export interface Principal {
  name: string;
  role: Role;
  token: string;
}

export type StoreTarget = { engine: "postgres"; url: string } | { engine: "pglite"; dataDir: string | null };

export interface Config {
  port: number;
  host: string;
  /** HTTP server timeouts; see src/http/timeouts.ts. */
  http: { headersTimeoutMs: number; requestTimeoutMs: number; keepAliveTimeoutMs: number };
  store: StoreTarget;
  /** PostgreSQL: the URL migrations run with (the schema owner); DATABASE_URL unless MIGRATION_DATABASE_URL is set. */
  migrationUrl: string | undefined;
  /** How long a migration waits for a lock (the migration lock or a table lock); 0 waits forever. */
  migrationLockTimeoutMs: number;
  /** How long one migration statement may run; 0 (the default) sets no limit. */
  migrationStatementTimeoutMs: number;
  dataDir: string;
  adminToken: string | undefined;
  principals: Principal[];
  logLevel: Static<typeof EnvSchema>["LOG_LEVEL"];
  catalogFile: string | undefined;
  poolSize: number;
  dbTimeoutMs: number;
  shutdownTimeoutMs: number;
  authFailureLimit: number;
  /**
   * Fastify's trustProxy: false, a hop count, or the proxies' addresses/CIDRs.
   * Either way the client address is read from the right of X-Forwarded-For,
   * skipping trusted hops — never the left-most entry, which a client writes.
   */
  trustProxy: false | number | string[];
  trialSweepIntervalMs: number;
  /** Worker threads that hash API keys (argon2id, 64 MiB each while hashing). */
  argon2Threads: number;
  /** Key hashes that may wait for a thread; beyond that verify answers 503. */
  argon2Queue: number;
  webhooks: WebhookSettings;
  /** Single sign-on for people (docs/access.md); `oidc` is null when OIDC_ISSUER is unset. */
  sso: SsoSettings;
}

export interface OidcSettings {
  issuer: string;
  clientId: string;
  /** Absent: a public client (PKCE alone). */
  clientSecret: string | undefined;
  /** The redirect URI: `<PUBLIC_URL>/v1/auth/callback`. */
  redirectUri: string;
  /** The claim whose value (a string or an array of strings) gives the role. */
  roleClaim: string;
  adminValues: string[];
  auditorValues: string[];
  /** Every scope asked for: `openid email profile` and OIDC_SCOPES. */
  scopes: string[];
}

export interface SsoSettings {
  oidc: OidcSettings | null;
  /** PUBLIC_URL's origin (`https://host[:port]`): cookie-authenticated changes must come from it. */
  publicOrigin: string | null;
  /** PUBLIC_URL is https: the cookie is `__Host-tr_session`, Secure. */
  secureCookies: boolean;
  sessionIdleMs: number;
  sessionMaxMs: number;
}

/** Webhook delivery (docs/webhooks.md). The retry timings are settings so tests need not wait 5 s. */
export interface WebhookSettings {
  /** Allow URLs that name or resolve to non-public addresses (development, tests). */
  allowPrivate: boolean;
  /** An attempt without a 2xx answer within this long has failed. */
  timeoutMs: number;
  /** Attempts in flight at once per endpoint, per instance. */
  concurrency: number;
  /** Retry n waits base * 2^(n-1) (+-20 %), at most max, while within the window after the event. */
  retryBaseMs: number;
  retryMaxMs: number;
  retryWindowMs: number;
  /** The safety-net poll; notifications wake the worker sooner. */
  pollMs: number;
  retentionDays: number;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * A rejected setting as it may be echoed: secrets never (a token is named,
 * not shown), and a URL without its password (`postgres://u:***@host/db`).
 */
function shown(key: string, value: unknown): unknown {
  if (typeof value !== "string") return value;
  if (/TOKEN|SECRET/.test(key)) return "(hidden)";
  if (/URL/.test(key)) return redactUrlPassword(value);
  return value;
}

/**
 * The password in a URL's user info replaced by `***`. Done by hand rather
 * than with `URL`, so that strings `URL` cannot parse are redacted too; the
 * user info ends at the authority's last `@` (a password may hold `@`).
 */
export function redactUrlPassword(url: string): string {
  const slashes = url.indexOf("//");
  const from = slashes >= 0 && !/[/?#@]/.test(url.slice(0, slashes)) ? slashes + 2 : 0;
  const end = url.slice(from).search(/[/?#]/);
  const authority = end < 0 ? url.slice(from) : url.slice(from, from + end);
  const at = authority.lastIndexOf("@");
  const colon = authority.indexOf(":");
  if (at < 0 || colon < 0 || colon > at) return url;
  return `${url.slice(0, from + colon + 1)}***${url.slice(from + at)}`;
}

/** Tokens shorter than this are refused: they could be guessed. */
export const MIN_TOKEN_LENGTH = 16;
const NAME_PATTERN = /^[A-Za-z0-9_.@-]{1,100}$/;
const TOKEN_PATTERN = /^[\x21-\x7e]+$/;

/**
 * `requireAdminToken`: the server needs one on PostgreSQL; one-shot tools
 * such as `migrate` do not.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env, { requireAdminToken = true } = {}): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const v = env[key];
    if (v !== undefined && v !== "") raw[key] = v;
  }
  const converted = Value.Convert(EnvSchema, Value.Default(EnvSchema, raw));
  const problems = [...Value.Errors(EnvSchema, converted)];
  if (problems.length > 0) {
    const lines = problems.map((e) => {
      const key = e.path.replace(/^\//, "");
      return `  ${key}=${JSON.stringify(shown(key, raw[key]))}: expected ${HINTS[key] ?? e.message}`;
    });
    throw new ConfigError(`invalid settings:\n${lines.join("\n")}`);
  }
  const s = converted as Static<typeof EnvSchema>;

  const principals: Principal[] = [];
  if (s.REGISTRY_ADMIN_TOKEN !== undefined) {
    checkToken("REGISTRY_ADMIN_TOKEN", s.REGISTRY_ADMIN_TOKEN);
    principals.push({ name: "admin", role: "admin", token: s.REGISTRY_ADMIN_TOKEN });
  }
  principals.push(...parseTokens(s.REGISTRY_TOKENS ?? ""));
  const names = new Set<string>();
  const tokens = new Set<string>();
  for (const p of principals) {
    if (names.has(p.name))
      throw new ConfigError(`principal name "${p.name}" is used twice (the name "admin" belongs to REGISTRY_ADMIN_TOKEN)`);
    if (tokens.has(p.token)) throw new ConfigError(`principal "${p.name}" reuses another principal's token; give each its own`);
    names.add(p.name);
    tokens.add(p.token);
  }

  let store: StoreTarget;
  if (s.DATABASE_URL === undefined) store = { engine: "pglite", dataDir: s.DATA_DIR };
  else if (s.DATABASE_URL === "memory:") store = { engine: "pglite", dataDir: null };
  else store = { engine: "postgres", url: s.DATABASE_URL };

  if (requireAdminToken && store.engine === "postgres" && s.REGISTRY_ADMIN_TOKEN === undefined) {
    throw new ConfigError(
      "REGISTRY_ADMIN_TOKEN is required when DATABASE_URL points at PostgreSQL.\n" +
        "  Generate one with `npx tenant-registry token` and set REGISTRY_ADMIN_TOKEN.",
    );
  }

  return {
    port: s.PORT,
    host: s.HOST,
    http: httpTimeouts(s.HTTP_HEADERS_TIMEOUT_MS, s.HTTP_REQUEST_TIMEOUT_MS, s.HTTP_KEEP_ALIVE_TIMEOUT_MS),
    store,
    migrationUrl: store.engine === "postgres" ? (s.MIGRATION_DATABASE_URL ?? store.url) : undefined,
    migrationLockTimeoutMs: s.MIGRATION_LOCK_TIMEOUT_MS,
    migrationStatementTimeoutMs: s.MIGRATION_STATEMENT_TIMEOUT_MS,
    dataDir: s.DATA_DIR,
    adminToken: s.REGISTRY_ADMIN_TOKEN,
    principals,
    logLevel: s.LOG_LEVEL,
    catalogFile: s.CATALOG_FILE,
    poolSize: s.DATABASE_POOL_SIZE,
    dbTimeoutMs: s.DATABASE_TIMEOUT_MS,
    shutdownTimeoutMs: s.SHUTDOWN_TIMEOUT_MS,
    authFailureLimit: s.AUTH_FAILURE_LIMIT,
    trustProxy: parseTrustProxy(s.TRUST_PROXY),
    trialSweepIntervalMs: s.TRIAL_SWEEP_INTERVAL_MS,
    argon2Threads: s.ARGON2_THREADS ?? availableParallelism(),
    argon2Queue: s.ARGON2_QUEUE,
    webhooks: {
      allowPrivate: s.WEBHOOK_ALLOW_PRIVATE === "true",
      timeoutMs: s.WEBHOOK_TIMEOUT_MS,
      concurrency: s.WEBHOOK_CONCURRENCY,
      retryBaseMs: s.WEBHOOK_RETRY_BASE_MS,
      retryMaxMs: s.WEBHOOK_RETRY_MAX_MS,
      retryWindowMs: s.WEBHOOK_RETRY_WINDOW_MS,
      pollMs: s.WEBHOOK_POLL_MS,
      retentionDays: s.WEBHOOK_RETENTION_DAYS,
    },
    sso: parseSso(s),
  };
}

const list = (v: string, separator: RegExp = /,/): string[] =>
  v
    .split(separator)
    .map((x) => x.trim())
    .filter((x) => x !== "");

/** The OIDC settings, refused when they do not fit together (each message names the variable to set). */
function parseSso(s: Static<typeof EnvSchema>): SsoSettings {
  let publicOrigin: string | null = null;
  let secureCookies = false;
  let base = "";
  if (s.PUBLIC_URL !== undefined) {
    let url: URL;
    try {
      url = new URL(s.PUBLIC_URL);
    } catch {
      throw new ConfigError(`PUBLIC_URL=${JSON.stringify(s.PUBLIC_URL)}: expected ${HINTS.PUBLIC_URL}`);
    }
    if (url.search || url.hash || url.username || url.password) {
      throw new ConfigError(`PUBLIC_URL=${JSON.stringify(s.PUBLIC_URL)}: expected a base URL without user, query or fragment`);
    }
    publicOrigin = url.origin;
    secureCookies = url.protocol === "https:";
    base = `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
  }
  const sessionIdleMs = Math.round(s.SESSION_IDLE_MINUTES * 60_000);
  const sessionMaxMs = Math.round(s.SESSION_MAX_HOURS * 3_600_000);
  if (s.OIDC_ISSUER === undefined) {
    for (const key of ["OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"] as const) {
      if (s[key] !== undefined)
        throw new ConfigError(`${key} is set but OIDC_ISSUER is not: set OIDC_ISSUER to the identity provider's issuer URL`);
    }
    return { oidc: null, publicOrigin, secureCookies, sessionIdleMs, sessionMaxMs };
  }
  const issuer = URL.parse(s.OIDC_ISSUER);
  if (issuer === null || (issuer.protocol === "http:" && !["127.0.0.1", "localhost", "[::1]"].includes(issuer.hostname))) {
    throw new ConfigError(
      `OIDC_ISSUER=${JSON.stringify(s.OIDC_ISSUER)}: expected an https:// URL (plain http only on loopback, for development)`,
    );
  }
  if (s.OIDC_CLIENT_ID === undefined)
    throw new ConfigError("OIDC_ISSUER is set but OIDC_CLIENT_ID is not: set the client id the identity provider gave the registry");
  if (publicOrigin === null) {
    throw new ConfigError(
      "OIDC_ISSUER is set but PUBLIC_URL is not: set the registry's external base URL (the redirect URI is <PUBLIC_URL>/v1/auth/callback)",
    );
  }
  const adminValues = list(s.OIDC_ADMIN_VALUES);
  const auditorValues = list(s.OIDC_AUDITOR_VALUES);
  if (adminValues.length === 0 && auditorValues.length === 0) {
    throw new ConfigError(
      `OIDC_ISSUER is set but neither OIDC_ADMIN_VALUES nor OIDC_AUDITOR_VALUES is: name the ${s.OIDC_ROLE_CLAIM} values that give each role, or nobody could sign in`,
    );
  }
  const scopes = ["openid", "email", "profile"];
  for (const sc of list(s.OIDC_SCOPES, /[,\s]+/)) if (!scopes.includes(sc)) scopes.push(sc);
  return {
    oidc: {
      issuer: s.OIDC_ISSUER,
      clientId: s.OIDC_CLIENT_ID,
      clientSecret: s.OIDC_CLIENT_SECRET,
      redirectUri: `${base}/v1/auth/callback`,
      roleClaim: s.OIDC_ROLE_CLAIM,
      adminValues,
      auditorValues,
      scopes,
    },
    publicOrigin,
    secureCookies,
    sessionIdleMs,
    sessionMaxMs,
  };
}

function httpTimeouts(headersTimeoutMs: number, requestTimeoutMs: number, keepAliveTimeoutMs: number): Config["http"] {
  // Node refuses a headers timeout longer than the request timeout.
  if (requestTimeoutMs !== 0 && requestTimeoutMs < headersTimeoutMs) {
    throw new ConfigError(
      `HTTP_REQUEST_TIMEOUT_MS=${requestTimeoutMs} is shorter than HTTP_HEADERS_TIMEOUT_MS=${headersTimeoutMs}: ` +
        "the whole request cannot arrive before its headers; raise it or set 0",
    );
  }
  return { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs };
}

/**
 * `true` is refused rather than passed on: Fastify would then take the
 * left-most X-Forwarded-For entry, and behind a load balancer that appends
 * (as they all do) a client rotating that header would be a new address on
 * every request — the auth-failure limit would never bite.
 */
function parseTrustProxy(value: string): false | number | string[] {
  const v = value.trim();
  if (v === "false" || v === "" || v === "0") return false;
  if (/^[1-9]\d{0,1}$/.test(v)) return Number(v);
  const list = v.split(",").map((x) => x.trim());
  if (v !== "true" && list.every((x) => /^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(x))) return list;
  throw new ConfigError(`TRUST_PROXY=${JSON.stringify(value)}: expected ${HINTS.TRUST_PROXY}`);
}

function checkToken(where: string, token: string): void {
  if (token.length < MIN_TOKEN_LENGTH || !TOKEN_PATTERN.test(token)) {
    throw new ConfigError(
      `${where}: a token must be at least ${MIN_TOKEN_LENGTH} printable characters without spaces; ` +
        "generate one with `npx tenant-registry token`",
    );
  }
}

/** REGISTRY_TOKENS: comma-separated `name:role:token`. */
export function parseTokens(value: string): Principal[] {
  const out: Principal[] = [];
  const entries = value
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  entries.forEach((entry, i) => {
    const parts = entry.split(":");
    const where = `REGISTRY_TOKENS entry ${i + 1}`;
    if (parts.length < 3) throw new ConfigError(`${where}: expected name:role:token`);
    const [name = "", role = "", ...rest] = parts;
    const token = rest.join(":");
    if (!NAME_PATTERN.test(name)) throw new ConfigError(`${where}: name must match ${NAME_PATTERN.source}`);
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new ConfigError(`${where} ("${name}"): role must be one of ${ROLES.join(", ")}`);
    }
    checkToken(`${where} ("${name}")`, token);
    out.push({ name, role: role as Role, token });
  });
  return out;
}
