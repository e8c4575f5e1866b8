import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LISTEN_APPLICATION_NAME } from "../../src/store/pg.js";
import { openTestApp, type TestApp, uniqueSlug, verifyReason } from "../helpers/app.js";
import { ensureProduct, setEntitlement } from "../helpers/catalog-fixtures.js";
import { openTestDb, type TestDb } from "../helpers/db.js";

/**
 * Two app instances, each with its own pool and LISTEN connection, on one
 * PostgreSQL database, as behind a load balancer: a change made through
 * one must stop the other's cached "valid" within about a second.
 */
describe.runIf(process.env.TEST_DATABASE_URL)("verify across two instances on PostgreSQL", () => {
  let store: TestDb;
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    store = await openTestDb("postgres");
    a = await openTestApp("postgres", store);
    b = await openTestApp("postgres", { ...store, db: await store.connect() });
    await ensureProduct(store.db, "crm");
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await store.close();
  });

  /** Milliseconds until `t` answers `expected`; fails after 1 s. */
  const until = async (t: TestApp, body: Record<string, unknown>, expected: string, from: number) => {
    await expect.poll(() => verifyReason(t, body), { timeout: 1000, interval: 10 }).toBe(expected);
    return performance.now() - from;
  };
  const setup = async () => {
    const tenantId = (await a.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Twice" })).json().id as string;
    await setEntitlement(store, tenantId, "crm", "active");
    const key = (await a.call("admin", "POST", "/v1/api-keys", { tenant_id: tenantId, name: "k", product: "crm" })).json();
    expect(await verifyReason(b, { key: key.key, product: "crm" })).toBe("valid");
    expect(await verifyReason(a, { key: key.key, product: "crm" })).toBe("valid");
    expect(b.app.keyServices.cache.key(key.id)).toBeDefined();
    return { tenantId, id: key.id as string, key: key.key as string };
  };

  it("a key revoked through one instance stops verifying on the other within a second", async () => {
    const k = await setup();
    const t0 = performance.now();
    expect((await a.call("admin", "DELETE", `/v1/api-keys/${k.id}`)).statusCode).toBe(204);
    const ms = await until(b, { key: k.key, product: "crm" }, "revoked", t0);
    expect(ms).toBeLessThan(1000);
  });

  it("cancelling the tenant, or changing its entitlement, reaches the other instance within a second", async () => {
    const k = await setup();
    let t0 = performance.now();
    await setEntitlement(store, k.tenantId, "crm", "cancelled");
    expect(await until(b, { key: k.key, product: "crm" }, "not_entitled", t0)).toBeLessThan(1000);
    expect(await verifyReason(b, { key: k.key })).toBe("valid");
    t0 = performance.now();
    await a.call("admin", "POST", `/v1/tenants/${k.tenantId}/cancel`);
    expect(await until(b, { key: k.key }, "tenant_cancelled", t0)).toBeLessThan(1000);
  });

  it("when the notification connection drops, the cache is flushed and the listener comes back", async () => {
    const k = await setup();
    const before = b.logs.length;
    // Both instances' LISTEN connections are killed; notifications sent meanwhile are lost.
    await store.db.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
      [LISTEN_APPLICATION_NAME],
    );
    await expect.poll(() => b.logs.slice(before).some((l) => l.includes("change notifications interrupted")), { timeout: 2000 }).toBe(true);
    // Several listeners log the interruption (verify cache, tokens, sessions): wait for the verify cache's own flush.
    await expect.poll(() => b.app.keyServices.cache.key(k.id), { timeout: 2000 }).toBeUndefined();
    const t0 = performance.now();
    await a.call("admin", "DELETE", `/v1/api-keys/${k.id}`);
    expect(await until(b, { key: k.key, product: "crm" }, "revoked", t0)).toBeLessThan(1000);
    await expect.poll(() => b.app.keyServices.cache.stats().listening, { timeout: 5000 }).toBe(true);
    // Listening again: changes flow as before.
    const k2 = await setup();
    const t1 = performance.now();
    await a.call("admin", "DELETE", `/v1/api-keys/${k2.id}`);
    expect(await until(b, { key: k2.key, product: "crm" }, "revoked", t1)).toBeLessThan(1000);
  });
});
