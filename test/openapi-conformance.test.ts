import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROBLEM_MEDIA_TYPE } from "../src/http/openapi-conformance.js";
import { openTestApp, type TestApp } from "./helpers/app.js";
import { ENGINES } from "./helpers/db.js";

interface Operation {
  operationId?: string;
  security?: unknown[];
  requestBody?: unknown;
  responses: Record<string, { content?: Record<string, unknown> }>;
}
const doc = JSON.parse(readFileSync(new URL("../openapi.json", import.meta.url), "utf8")) as {
  paths: Record<string, Record<string, Operation>>;
};
const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, path, op })),
);

function patterns(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const v of node) patterns(v, out);
  else if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "pattern" && typeof v === "string") out.push(v);
      else patterns(v, out);
    }
  }
  return out;
}

describe("the OpenAPI document, as tools that are not ours read it", () => {
  it("names every operation with a unique operationId", () => {
    const ids = operations.map((o) => o.op.operationId);
    expect(operations.filter((o) => !o.op.operationId).map((o) => o.name)).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("declares every error response as application/problem+json (the sign-in callback's pages for a browser aside)", () => {
    const page = (name: string, types: string) => name === "GET /v1/auth/callback" && types === "text/html";
    const wrong = operations.flatMap(({ name, op }) =>
      Object.entries(op.responses)
        .filter(([status, r]) => {
          const types = Object.keys(r.content ?? {}).join();
          return Number(status) >= 400 && r.content && types !== PROBLEM_MEDIA_TYPE && !page(name, types);
        })
        .map(([status]) => `${name} ${status}`),
    );
    expect(wrong).toEqual([]);
  });

  it("lists 401, 403 and 429 wherever a token is needed (/metrics too), 405 everywhere, 413 and 415 with a body", () => {
    for (const { name, op } of operations) {
      const has = (s: string) => expect(op.responses[s], `${name} ${s}`).toBeDefined();
      has("405");
      if (op.security?.length) for (const s of ["401", "403", "429"]) has(s);
      if (op.requestBody) for (const s of ["400", "413", "415"]) has(s);
    }
    expect(doc.paths["/metrics"]?.get?.responses["401"]).toBeDefined();
  });

  it("documents the 400 of every /v1 operation: each refuses query parameters it does not declare (GET /v1/me too)", () => {
    const v1 = operations.filter((o) => o.path.startsWith("/v1/"));
    expect(v1.filter((o) => !o.op.responses["400"]).map((o) => o.name)).toEqual([]);
    expect(doc.paths["/v1/me"]?.get?.responses["400"]).toBeDefined();
  });

  it("gives date-time examples that stay valid: far in the future, so one for a value that must lie ahead does", () => {
    const examples: string[] = [];
    const walk = (node: unknown) => {
      if (Array.isArray(node)) for (const v of node) walk(v);
      else if (node && typeof node === "object") {
        const o = node as Record<string, unknown>;
        if (o.format === "date-time" && Array.isArray(o.examples)) examples.push(...(o.examples as string[]));
        for (const v of Object.values(o)) walk(v);
      }
    };
    walk(doc);
    expect(examples.length).toBeGreaterThan(0);
    const inTenYears = Date.now() + 10 * 365 * 24 * 3600 * 1000;
    for (const e of examples) expect(Date.parse(e), e).toBeGreaterThan(inTenYears);
  });

  it("uses only patterns that compile without the Unicode flag (no \\p{…} classes)", () => {
    const all = patterns(doc);
    expect(all.length).toBeGreaterThan(3);
    for (const p of all) {
      expect(p, p).not.toMatch(/\\[pP]\{/);
      expect(() => new RegExp(p), p).not.toThrow();
    }
  });
});

describe.each(ENGINES)("answers as the document says on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
  });
  afterAll(() => t.close());

  it.each([
    ["QUERY", "/healthz", "GET"],
    ["QUERY", "/v1/tenants", "GET, POST"],
    ["PUT", "/v1/audit", "GET, POST"],
    ["DELETE", "/openapi.json", "GET"],
  ])("%s %s is a 405 problem with Allow, before any body is read", async (method, url, allow) => {
    for (const headers of [{}, { "content-type": "text/plain" }, { "content-type": "application/json" }]) {
      const res = await t.app.inject({ method: method as "GET", url, headers, payload: "{not json" });
      expect(res.statusCode, res.body).toBe(405);
      expect(res.headers.allow).toBe(allow);
      expect(res.headers["content-type"]).toContain(PROBLEM_MEDIA_TYPE);
    }
  });

  it("/metrics without a token is a 401 problem", async () => {
    const res = await t.call(null, "GET", "/metrics");
    expect(res.statusCode).toBe(401);
    expect(res.headers["content-type"]).toContain(PROBLEM_MEDIA_TYPE);
  });
});

describe("a webhook URL: the documented pattern and the server agree", () => {
  let t: TestApp;
  beforeAll(async () => {
    // Loopback targets (port 9, discard: nothing answers) so no DNS is needed.
    t = await openTestApp("pglite", undefined, { WEBHOOK_ALLOW_PRIVATE: "true" });
  });
  afterAll(() => t.close());

  it("takes the scheme in any case, as URLs do; refuses what the pattern refuses", async () => {
    const pattern = patterns(doc.paths["/v1/webhooks"]?.post?.requestBody).find((p) => p.includes("[hH]"));
    expect(pattern).toBeDefined();
    const re = new RegExp(pattern ?? "");
    for (const accepted of ["HTTP://127.0.0.1:9/hook", "Https://127.0.0.1:9/hook?x=1"]) {
      expect(re.test(accepted), accepted).toBe(true);
      const res = await t.call("admin", "POST", "/v1/webhooks", { url: accepted, events: ["*"] });
      expect(res.statusCode, res.body).toBe(201);
    }
    for (const refused of ["HTTP://", "http://127.0.0.1:9/a b", "ftp://127.0.0.1/"]) {
      expect(re.test(refused), refused).toBe(false);
      const res = await t.call("admin", "POST", "/v1/webhooks", { url: refused, events: ["*"] });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().errors.map((e: { field: string }) => e.field)).toContain("body/url");
    }
  });
});
