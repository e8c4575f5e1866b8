import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";

/** Every failure is an RFC 9457 problem with a stable code, never a stack trace. */
function expectProblem(res: { statusCode: number; headers: Record<string, unknown>; body: string }, status: number, code: string) {
  expect(res.statusCode).toBe(status);
  expect(String(res.headers["content-type"])).toContain("application/problem+json");
  const body = JSON.parse(res.body);
  expect(body).toMatchObject({ status, code, type: `urn:tenant-registry:problem:${code}` });
  expect(typeof body.title).toBe("string");
  expect(typeof body.detail).toBe("string");
  expect(res.body).not.toMatch(/\bat .+:\d+:\d+\)?/);
  return body;
}

describe.each(ENGINES)("errors and plumbing on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
  });
  afterAll(() => t.close());

  it("404 for an unknown route, 405 with Allow for a wrong method", async () => {
    expectProblem(await t.call("admin", "GET", "/v1/nothing"), 404, "not_found");
    const res = await t.call("admin", "DELETE", "/v1/tenants");
    expectProblem(res, 405, "not_found");
    expect(res.headers.allow).toBe("GET, POST");
  });

  it("400 for malformed JSON, 415 for another content type, 413 beyond 1 MiB", async () => {
    const headers = { authorization: `Bearer ${t.tokens.admin}` };
    expectProblem(
      await t.app.inject({
        method: "POST",
        url: "/v1/tenants",
        headers: { ...headers, "content-type": "application/json" },
        payload: '{"slug":',
      }),
      400,
      "invalid_input",
    );
    expectProblem(
      await t.app.inject({ method: "POST", url: "/v1/tenants", headers: { ...headers, "content-type": "text/plain" }, payload: "slug=x" }),
      415,
      "invalid_input",
    );
    const big = JSON.stringify({ slug: uniqueSlug(), name: "x".repeat(1024 * 1024) });
    expectProblem(
      await t.app.inject({ method: "POST", url: "/v1/tenants", headers: { ...headers, "content-type": "application/json" }, payload: big }),
      413,
      "invalid_input",
    );
  });

  it("an empty JSON body reads as no body", async () => {
    const res = await t.app.inject({
      method: "POST",
      url: "/v1/tenants",
      headers: { authorization: `Bearer ${t.tokens.admin}`, "content-type": "application/json" },
      payload: "",
    });
    expectProblem(res, 400, "invalid_input");
  });

  it("rejects prototype pollution keys instead of merging them", async () => {
    const res = await t.app.inject({
      method: "POST",
      url: "/v1/tenants",
      headers: { authorization: `Bearer ${t.tokens.admin}`, "content-type": "application/json" },
      payload: `{"slug":"${uniqueSlug()}","name":"x","__proto__":{"admin":true}}`,
    });
    expectProblem(res, 400, "invalid_input");
    // Named, not "Body is not valid JSON": the body is JSON, one key of it is refused.
    expect(res.json().errors).toEqual([{ field: "body/__proto__", message: "is not allowed: __proto__ may not be a key" }]);
    const nested = await t.app.inject({
      method: "POST",
      url: "/v1/audit",
      headers: { authorization: `Bearer ${t.tokens.admin}`, "content-type": "application/json" },
      payload: `{"action":"x.y","metadata":{"list":[1,{"constructor":{"prototype":{"admin":true}}}]}}`,
    });
    expectProblem(nested, 400, "invalid_input");
    expect(nested.json().errors).toEqual([
      { field: "body/metadata/list/1/constructor/prototype", message: "is not allowed: constructor.prototype may not be a key" },
    ]);
    expect(nested.json().detail).not.toMatch(/not valid JSON/);
  });

  it("a bad X-Actor-Id is a 400", async () => {
    const res = await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "x" }, { "x-actor-id": "" });
    expectProblem(res, 400, "invalid_input");
  });

  it("echoes a sane X-Request-Id and puts the request id in problems", async () => {
    const res = await t.call(null, "GET", "/v1/tenants", undefined, { "x-request-id": "trace-123" });
    expect(res.headers["x-request-id"]).toBe("trace-123");
    expect(expectProblem(res, 401, "unauthorized").request_id).toBe("trace-123");
    const odd = await t.call(null, "GET", "/v1/tenants", undefined, { "x-request-id": "bad id with spaces" });
    expect(odd.headers["x-request-id"]).not.toBe("bad id with spaces");
  });

  it("sets security headers", async () => {
    const res = await t.call("admin", "GET", "/v1/tenants");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["cache-control"]).toBe("no-store");
  });

  it("healthz and readyz answer without a token", async () => {
    expect((await t.call(null, "GET", "/healthz")).json()).toEqual({ status: "ok" });
    expect((await t.call(null, "GET", "/readyz")).json()).toEqual({ status: "ready" });
  });

  it("a URL the router cannot decode is a 400 problem with a request id and the security headers, counted as unmatched", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/tenants/%zz", headers: { authorization: `Bearer ${t.tokens.admin}` } });
    expectProblem(res, 400, "invalid_input");
    expect(res.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.json().request_id).toBe(res.headers["x-request-id"]);
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["cache-control"]).toBe("no-store");
    const metrics = (await t.call("auditor", "GET", "/metrics")).body;
    expect(metrics).toMatch(/tenant_registry_http_requests_total\{method="GET",route="unmatched",status="400"\} [1-9]/);
  });

  it("never logs the Authorization header", async () => {
    await t.call("admin", "GET", "/v1/tenants");
    await t.call("admin", "GET", "/v1/nothing");
    const all = t.logs.join("");
    expect(all).toContain("request completed");
    expect(all).not.toContain(t.tokens.admin);
  });
});

describe("store failures", () => {
  it("readyz is 503 and requests are 503 problems when the store does not answer; no stack traces", async () => {
    const t = await openTestApp("pglite");
    await t.store.db.close();
    const ready = await t.call(null, "GET", "/readyz");
    expectProblem(ready, 503, "unavailable");
    const res = await t.call("admin", "GET", "/v1/tenants");
    const body = expectProblem(res, 503, "unavailable");
    expect(res.headers["retry-after"]).toBe("1");
    expect(body.detail).not.toMatch(/PGlite/);
    await t.app.close();
  });
});

describe("verify's log", () => {
  it("writes no access-log line for an answered verify, and logs a failed one with its request id", async () => {
    const t = await openTestApp("pglite");
    try {
      const tenant = (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Quiet" })).json();
      const seen = (await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenant.id, name: "seen" })).json().key as string;
      const unseen = (await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenant.id, name: "unseen" })).json().key as string;
      const from = t.logs.length;
      const answered = [
        await t.call("service", "POST", "/v1/internal/api-keys/verify", { key: seen }),
        await t.call("service", "POST", "/v1/internal/api-keys/verify", { key: seen }),
        await t.call("service", "POST", "/v1/internal/api-keys/verify", { key: "bp_nope" }),
      ];
      expect(answered.map((r) => r.statusCode)).toEqual([200, 200, 200]);
      const quiet = t.logs.slice(from).join("");
      for (const r of answered) expect(quiet).not.toContain(String(r.headers["x-request-id"]));
      expect(quiet).not.toContain("api-keys/verify");

      // A verify that needs the store, with the store gone: a 503, logged at error with its id.
      await t.store.db.close();
      const failed = await t.call("service", "POST", "/v1/internal/api-keys/verify", { key: unseen });
      expectProblem(failed, 503, "unavailable");
      const lines = t.logs.slice(from).filter((l) => l.includes(String(failed.headers["x-request-id"])));
      expect(lines.some((l) => l.includes('"level":50'))).toBe(true);
      expect(lines.join("")).not.toContain(unseen);
    } finally {
      await t.app.close();
    }
  });
});

describe("typos fail loudly on every /v1 route", () => {
  it("unknown query parameters are 400 where a route declares none; a body is 400 where it takes none", async () => {
    const t = await openTestApp("pglite");
    try {
      const tenant = (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Typo" })).json();
      const q = await t.call("admin", "GET", `/v1/tenants/${tenant.id}?expand=all`);
      expect(q.statusCode).toBe(400);
      expect(q.json().errors[0].field).toBe("querystring/expand");
      expect((await t.call("admin", "POST", "/v1/tenants?dry_run=1", { slug: uniqueSlug(), name: "x" })).statusCode).toBe(400);
      const body = await t.call("admin", "POST", `/v1/tenants/${tenant.id}/activate`, { force: true });
      expect(body.statusCode).toBe(400);
      expect((await t.call("admin", "GET", `/v1/tenants/${tenant.id}`)).json().status).toBe("pending");
      expect((await t.call("admin", "POST", `/v1/tenants/${tenant.id}/activate`)).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});
