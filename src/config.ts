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
  DATABASE_URL: Type.Optional(Type.String({ pattern: "^(postgres(ql)?://.+|memory:)$" })),
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
});

const HINTS: Record<string, string> = {
  PORT: "an integer from 0 to 65535, e.g. PORT=8080",
  DATABASE_URL: "a postgres:// or postgresql:// URL, or memory:, or unset for the embedded store",
  LOG_LEVEL: "one of fatal, error, warn, info, debug, trace, silent",
  DATABASE_POOL_SIZE: "an integer from 1 to 200",
  DATABASE_TIMEOUT_MS: "milliseconds, from 100 to 600000",
  SHUTDOWN_TIMEOUT_MS: "milliseconds, from 100 to 600000",
  AUTH_FAILURE_LIMIT: "failed authentications per client address per minute, an integer of at least 1",
  TRUST_PROXY: "false, true (trust every proxy), or comma-separated proxy addresses/CIDRs",
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
  store: StoreTarget;
  dataDir: string;
  adminToken: string | undefined;
  principals: Principal[];
  logLevel: Static<typeof EnvSchema>["LOG_LEVEL"];
  catalogFile: string | undefined;
  poolSize: number;
  dbTimeoutMs: number;
  shutdownTimeoutMs: number;
  authFailureLimit: number;
  /** Fastify's trustProxy: whose X-Forwarded-For to believe for the client address. */
  trustProxy: boolean | string[];
  trialSweepIntervalMs: number;
  /** Worker threads that hash API keys (argon2id, 64 MiB each while hashing). */
  argon2Threads: number;
  /** Key hashes that may wait for a thread; beyond that verify answers 503. */
  argon2Queue: number;
  webhooks: WebhookSettings;
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
      return `  ${key}=${JSON.stringify(raw[key])}: expected ${HINTS[key] ?? e.message}`;
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
    store,
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
  };
}

function parseTrustProxy(value: string): boolean | string[] {
  const v = value.trim();
  if (v === "false" || v === "") return false;
  if (v === "true") return true;
  const list = v.split(",").map((x) => x.trim());
  if (list.every((x) => /^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(x))) return list;
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
