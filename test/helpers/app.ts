import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import type { LightMyRequestResponse } from "fastify";
import { expect } from "vitest";
import { buildApp } from "../../src/app.js";
import { loadCatalogFile } from "../../src/catalog-file.js";
import { loadConfig } from "../../src/config.js";
import { syncCatalog } from "../../src/domain/catalog.js";
import type { App } from "../../src/http/types.js";
import { createLogger } from "../../src/logger.js";
import type { Engine } from "../../src/store/db.js";
import { openTestDb, type TestDb } from "./db.js";

export const newTestToken = () => randomBytes(24).toString("base64url");

export interface TestApp {
  app: App;
  store: TestDb;
  tokens: { admin: string; service: string; auditor: string };
  /** Everything the app logged, as raw lines (to prove secrets never reach a log). */
  logs: string[];
  /** inject with a role's bearer token. */
  call(
    role: "admin" | "service" | "auditor" | null,
    method: string,
    url: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** `env`: extra settings, as the environment would give them. */
export async function openTestApp(engine: Engine, store?: TestDb, env: Record<string, string> = {}): Promise<TestApp> {
  const s = store ?? (await openTestDb(engine));
  // As the server does at start: the repo's catalog.json, so routes have products.
  await s.db.tx((q) => syncCatalog(q, loadCatalogFile()));
  const tokens = { admin: newTestToken(), service: newTestToken(), auditor: newTestToken() };
  const config = loadConfig({
    DATABASE_URL: s.url ?? "memory:",
    REGISTRY_ADMIN_TOKEN: tokens.admin,
    REGISTRY_TOKENS: `products:service:${tokens.service},compliance:auditor:${tokens.auditor}`,
    LOG_LEVEL: "info",
    // The security suite fails authentication on purpose, many times over.
    AUTH_FAILURE_LIMIT: "1000000",
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString("utf8"));
      cb();
    },
  });
  const app = await buildApp({ config, db: s.db, logger: createLogger("info", sink) });
  await app.ready();
  return {
    app,
    store: s,
    tokens,
    logs,
    call(role, method, url, body, headers = {}) {
      return app.inject({
        method: method as "GET",
        url,
        headers: { ...(role ? { authorization: `Bearer ${tokens[role]}` } : {}), ...headers },
        ...(body !== undefined ? { payload: body as object } : {}),
      });
    },
    async close() {
      await app.close();
      if (!store) await s.close();
    },
  };
}

let n = 0;
/** A slug no other test uses. */
export const uniqueSlug = (prefix = "t") => `${prefix}-${process.pid}-${Date.now().toString(36)}-${(n++).toString(36)}`;

/** What verify answers for `body` through `t`, as the service: "valid" or the refusal reason (a 200 is required). */
export async function verifyReason(t: TestApp, body: Record<string, unknown>): Promise<string> {
  const res = await t.call("service", "POST", "/v1/internal/api-keys/verify", body);
  expect(res.statusCode).toBe(200);
  const r = res.json();
  return r.valid ? "valid" : r.reason;
}
