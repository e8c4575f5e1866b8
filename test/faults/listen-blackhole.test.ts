import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LISTEN_APPLICATION_NAME, openPg } from "../../src/store/pg.js";
import { openTestApp, type TestApp, uniqueSlug, verifyReason } from "../helpers/app.js";
import { ensureProduct, setEntitlement } from "../helpers/catalog-fixtures.js";
import { openTestDb, type TestDb } from "../helpers/db.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";

const TIMEOUT_MS = 1000;
const isListener = (sent: string) => sent.includes(LISTEN_APPLICATION_NAME);

/**
 * Instance A reaches PostgreSQL through a proxy this test owns; instance B
 * directly. The proxy silences A's LISTEN socket without closing it — no
 * error, no FIN, no RST — as a NAT or firewall dropping an idle flow does.
 * A must notice within a second (its heartbeat does not come back), so a
 * change made through B reaches A within 2 s; a change made through A
 * itself takes effect on A at once, with no round trip at all. Then the
 * same proxy silences A's pooled connections: a request gets 503 within
 * DATABASE_TIMEOUT_MS + 1 s, and the next ones are served again.
 */
describe.runIf(process.env.TEST_DATABASE_URL)("a silently dead LISTEN or pooled connection on postgres", () => {
  let store: TestDb;
  let proxy: TcpProxy;
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    store = await openTestDb("postgres");
    const target = new URL(store.url ?? "");
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    const via = new URL(target);
    via.port = String(await proxy.listen());
    const dbA = openPg({ url: via.toString(), poolSize: 3, timeoutMs: TIMEOUT_MS, onError: () => {} });
    a = await openTestApp("postgres", { ...store, db: dbA, url: via.toString() }, { DATABASE_TIMEOUT_MS: String(TIMEOUT_MS) });
    b = await openTestApp("postgres", { ...store, db: await store.connect() });
    await ensureProduct(store.db, "crm");
  });
  afterAll(async () => {
    await a.close();
    await a.store.db.close();
    await b.close();
    await proxy.close();
    await store.close();
  });

  /** A fresh key verified (and so cached) on A, with A listening on a socket that carries its heartbeat. */
  async function setup() {
    await expect.poll(() => a.app.keyServices.cache.stats().listening, { timeout: 5000 }).toBe(true);
    // And on a live socket: after an earlier test's blackhole, A believes it listens until the heartbeat
    // deadline passes; only a heartbeat just back proves the current socket carries it.
    await expect
      .poll(() => a.store.db.channels?.().every((c) => c.listening && c.heartbeatAgeMs !== null && c.heartbeatAgeMs < 250), {
        timeout: 5000,
        interval: 20,
      })
      .toBe(true);
    const tenantId = (await b.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug("bh"), name: "Blackhole" })).json().id as string;
    await setEntitlement(store, tenantId, "crm", "active");
    const key = (await b.call("admin", "POST", "/v1/api-keys", { tenant_id: tenantId, name: "k", product: "crm" })).json();
    const ask = { key: key.key as string, product: "crm" };
    expect(await verifyReason(a, ask)).toBe("valid");
    expect(a.app.keyServices.cache.key(key.id)).toBeDefined();
    expect(a.app.keyServices.cache.tenant(tenantId)).toBeDefined();
    return { tenantId, id: key.id as string, ask };
  }

  const changes = {
    "key revoke": {
      make: (t: TestApp, k: { id: string }) => t.call("admin", "DELETE", `/v1/api-keys/${k.id}`),
      status: 204,
      reason: "revoked",
    },
    "tenant cancel": {
      make: (t: TestApp, k: { tenantId: string }) => t.call("admin", "POST", `/v1/tenants/${k.tenantId}/cancel`),
      status: 200,
      reason: "tenant_cancelled",
    },
    "entitlement revoke": {
      make: (t: TestApp, k: { tenantId: string }) =>
        t.call("admin", "POST", "/v1/entitlements", { tenant_id: k.tenantId, product: "crm", status: "cancelled" }),
      status: 200,
      reason: "not_entitled",
    },
  };

  it.each(Object.entries(changes))("%s through B reaches A within 2 s while A's LISTEN socket is blackholed", async (_name, change) => {
    const k = await setup();
    expect(proxy.blackhole(isListener)).toBeGreaterThan(0);
    const t0 = performance.now();
    expect((await change.make(b, k)).statusCode).toBe(change.status);
    await expect.poll(() => verifyReason(a, k.ask), { timeout: 2000, interval: 20 }).toBe(change.reason);
    expect(performance.now() - t0).toBeLessThan(2000);
    // A noticed: it said so, and it listens again on a new connection.
    await expect.poll(() => a.app.keyServices.cache.stats().listening, { timeout: 5000 }).toBe(true);
  });

  it.each(Object.entries(changes))(
    "%s through A itself takes effect on A at once while its LISTEN socket is blackholed",
    async (_name, change) => {
      const k = await setup();
      expect(proxy.blackhole(isListener)).toBeGreaterThan(0);
      // Well inside the heartbeat deadline: A still believes it listens, so only its own commit can tell it.
      expect((await change.make(a, k)).statusCode).toBe(change.status);
      expect(await verifyReason(a, k.ask)).toBe(change.reason);
    },
  );

  it("metrics show the lost channel and the heartbeat age", async () => {
    await setup();
    const scrape = async () => (await a.call("auditor", "GET", "/metrics")).body;
    const listening = (text: string) => /tenant_registry_change_channel_listening\{channel="tenant_registry_verify"\} (\d)/.exec(text)?.[1];
    const age = (text: string) =>
      Number(/tenant_registry_change_channel_heartbeat_age_seconds\{channel="tenant_registry_verify"\} ([\d.e-]+)/.exec(text)?.[1]);
    // Right after start the listener may still be connecting: wait until it is live and its heartbeat fresh.
    await expect.poll(async () => listening(await scrape()), { timeout: 5000, interval: 20 }).toBe("1");
    await expect.poll(async () => age(await scrape()), { timeout: 5000, interval: 20 }).toBeLessThan(1);
    proxy.blackhole(isListener);
    await expect.poll(async () => listening(await scrape()), { timeout: 2000, interval: 20 }).toBe("0");
    await expect.poll(async () => listening(await scrape()), { timeout: 5000 }).toBe("1");
  });

  it("a request on a pooled connection that went silent gets 503 within DATABASE_TIMEOUT_MS + 1 s; later ones are served", async () => {
    const k = await setup();
    // Every pooled connection of A goes silent (the LISTEN one keeps working); new connections still pass.
    expect(proxy.blackhole((sent) => !isListener(sent))).toBeGreaterThan(0);
    const statuses: number[] = [];
    for (const call of [
      () => a.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug("stale"), name: "Stale" }),
      () => a.call("auditor", "GET", `/v1/tenants/${k.tenantId}`),
    ]) {
      const t0 = performance.now();
      const res = await call();
      const ms = performance.now() - t0;
      statuses.push(res.statusCode);
      expect(ms).toBeLessThan(TIMEOUT_MS + 1000);
      // A request that drew a fresh connection is served, as it should be; one that drew a silent one fails fast.
      if (res.statusCode === 503) {
        expect(res.json()).toMatchObject({ code: "unavailable" });
        expect(res.headers["retry-after"]).toBeDefined();
      } else expect(res.statusCode).toBeLessThan(300);
    }
    // The pool hands out its idle (now silent) connections first.
    expect(statuses[0]).toBe(503);
    // The silent ones are destroyed, not returned to the pool: service resumes by itself.
    await expect.poll(async () => (await a.call("auditor", "GET", `/v1/tenants/${k.tenantId}`)).statusCode, { timeout: 10_000 }).toBe(200);
  });
});
