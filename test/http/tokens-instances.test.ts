import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LISTEN_APPLICATION_NAME, openPg } from "../../src/store/pg.js";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { openTestDb, type TestDb } from "../helpers/db.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";

const isListener = (sent: string) => sent.includes(LISTEN_APPLICATION_NAME);

/**
 * Two instances on one PostgreSQL database, as behind a load balancer. A
 * managed token revoked or rotated out through B must stop working on A,
 * which has it cached, within about a second: through the change channel,
 * and also when A's LISTEN socket has gone silent (A reaches the database
 * through a proxy this test owns, which can blackhole that socket without
 * closing it).
 */
describe.runIf(process.env.TEST_DATABASE_URL)("managed tokens across two instances on PostgreSQL", () => {
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
    const dbA = openPg({ url: via.toString(), poolSize: 3, timeoutMs: 1000, onError: () => {} });
    a = await openTestApp("postgres", { ...store, db: dbA, url: via.toString() }, { DATABASE_TIMEOUT_MS: "1000" });
    b = await openTestApp("postgres", { ...store, db: await store.connect() });
  });
  afterAll(async () => {
    await a.close();
    await a.store.db.close();
    await b.close();
    await proxy.close();
    await store.close();
  });

  const me = async (t: TestApp, token: string) =>
    (await t.app.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${token}` } })).statusCode;

  /** A token created through B, used (and so cached) on A, with A's channel live on a socket that carries its heartbeat. */
  async function setup() {
    await expect.poll(() => a.app.access.tokens.stats().listening, { timeout: 5000 }).toBe(true);
    await expect
      .poll(() => a.store.db.channels?.().every((c) => c.listening && c.heartbeatAgeMs !== null && c.heartbeatAgeMs < 250), {
        timeout: 5000,
        interval: 20,
      })
      .toBe(true);
    const created = (await b.call("admin", "POST", "/v1/tokens", { name: uniqueSlug("svc"), role: "service" })).json();
    expect(await me(a, created.token)).toBe(200);
    expect(a.app.access.tokens.stats().tokens).toBeGreaterThan(0);
    return created as { id: string; token: string };
  }

  const changes = {
    revoke: { make: (t: TestApp, id: string) => t.call("admin", "DELETE", `/v1/tokens/${id}`), status: 204 },
    "rotation with no grace": {
      make: (t: TestApp, id: string) => t.call("admin", "POST", `/v1/tokens/${id}/rotate`, { grace_seconds: 0 }),
      status: 201,
    },
  };

  it.each(Object.entries(changes))("a %s through B stops the token on A within about a second", async (_name, change) => {
    const tok = await setup();
    const t0 = performance.now();
    expect((await change.make(b, tok.id)).statusCode).toBe(change.status);
    await expect.poll(() => me(a, tok.token), { timeout: 2000, interval: 20 }).toBe(401);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it.each(Object.entries(changes))("a %s through B reaches A within 2 s while A's LISTEN socket is blackholed", async (_name, change) => {
    const tok = await setup();
    expect(proxy.blackhole(isListener)).toBeGreaterThan(0);
    expect((await change.make(b, tok.id)).statusCode).toBe(change.status);
    // From the commit on: "within about a second" is the heartbeat deadline, then one store read.
    const t0 = performance.now();
    await expect.poll(() => me(a, tok.token), { timeout: 2000, interval: 20 }).toBe(401);
    expect(performance.now() - t0).toBeLessThan(2000);
    // A noticed, and listens again on a new connection.
    await expect.poll(() => a.app.access.tokens.stats().listening, { timeout: 5000 }).toBe(true);
  });

  it("a revoke through A itself takes effect on A at once while its LISTEN socket is blackholed", async () => {
    const tok = await setup();
    expect(proxy.blackhole(isListener)).toBeGreaterThan(0);
    expect((await a.call("admin", "DELETE", `/v1/tokens/${tok.id}`)).statusCode).toBe(204);
    expect(await me(a, tok.token)).toBe(401);
  });

  it("the end of a rotation's grace stops the old token on both instances, with no notification", async () => {
    const tok = await setup();
    expect(await me(b, tok.token)).toBe(200);
    const rotated = await b.call("admin", "POST", `/v1/tokens/${tok.id}/rotate`, { grace_seconds: 1 });
    expect(rotated.statusCode).toBe(201);
    expect(await me(a, rotated.json().token)).toBe(200);
    for (const t of [a, b]) await expect.poll(() => me(t, tok.token), { timeout: 4000, interval: 50 }).toBe(401);
    expect(await me(a, rotated.json().token)).toBe(200);
  });
});
