import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "../helpers/app.js";

describe("metrics", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp("pglite");
  });
  afterAll(() => t.close());

  it("exposes request counts and latency by route pattern and status, pool and process figures", async () => {
    await t.call("admin", "GET", "/v1/tenants");
    await t.call("admin", "GET", "/v1/tenants/6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10");
    const res = await t.call("auditor", "GET", "/metrics");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toContain("text/plain");
    expect(res.body).toContain('tenant_registry_http_requests_total{method="GET",route="/v1/tenants",status="200"} 1');
    expect(res.body).toContain('tenant_registry_http_requests_total{method="GET",route="/v1/tenants/:id",status="404"} 1');
    expect(res.body).toContain("tenant_registry_http_request_duration_seconds_bucket");
    expect(res.body).toContain('tenant_registry_db_pool_connections{state="total"} 1');
    expect(res.body).toContain("tenant_registry_process_resident_memory_bytes");
  });

  it("counts verify answers by result, cache use, cache size and the argon2 pool", async () => {
    const tenant = (await t.call("admin", "POST", "/v1/tenants", { slug: "metrics-keys", name: "Metrics" })).json();
    const created = (await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenant.id, name: "m" })).json();
    for (let i = 0; i < 3; i++) await t.call("service", "POST", "/v1/internal/api-keys/verify", { key: created.key });
    await t.call("service", "POST", "/v1/internal/api-keys/verify", { key: "nope" });
    const body = (await t.call("auditor", "GET", "/metrics")).body;
    expect(body).toContain('tenant_registry_verify_results_total{result="valid"} 3');
    expect(body).toContain('tenant_registry_verify_results_total{result="malformed"} 1');
    expect(body).toMatch(/tenant_registry_verify_cache_lookups_total\{outcome="cached"\} 2/);
    expect(body).toMatch(/tenant_registry_verify_cache_lookups_total\{outcome="loaded"\} 1/);
    expect(body).toMatch(/tenant_registry_argon2_hashes_total\{outcome="hashed"\} [1-9]/);
    expect(body).toContain("tenant_registry_argon2_queue_depth 0");
    expect(body).toContain('tenant_registry_verify_cache_entries{kind="proofs"} 1');
    expect(created.key).toBeDefined();
    expect(body).not.toContain(created.key);
  });

  it("needs a token: 401 without, 403 for the service role", async () => {
    expect((await t.call(null, "GET", "/metrics")).statusCode).toBe(401);
    expect((await t.call("service", "GET", "/metrics")).statusCode).toBe(403);
  });
});
