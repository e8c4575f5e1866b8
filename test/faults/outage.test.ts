import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPg } from "../../src/store/pg.js";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { openTestDb, type TestDb } from "../helpers/db.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";

const TIMEOUT_MS = 1000;

/**
 * The database goes away mid-run (through a proxy this test owns) and comes
 * back: requests fail fast with 503 problems, /readyz says 503, the process
 * stays up, nothing half-done remains, and service resumes by itself.
 */
describe.runIf(process.env.TEST_DATABASE_URL)("database outage on postgres", () => {
  let direct: TestDb;
  let proxy: TcpProxy;
  let t: TestApp;

  beforeAll(async () => {
    direct = await openTestDb("postgres");
    const target = new URL(direct.url ?? "");
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    const port = await proxy.listen();
    const via = new URL(target);
    via.port = String(port);
    const db = openPg({ url: via.toString(), poolSize: 4, timeoutMs: TIMEOUT_MS, onError: () => {} });
    t = await openTestApp("postgres", { ...direct, db, url: via.toString() }, { DATABASE_TIMEOUT_MS: String(TIMEOUT_MS) });
  });
  afterAll(async () => {
    await t.close();
    await t.store.db.close();
    await proxy.close();
    await direct.close();
  });

  const createTenant = (slug: string) => t.call("admin", "POST", "/v1/tenants", { slug, name: "Outage" });
  const exists = async (slug: string) =>
    (await direct.db.query("SELECT 1 FROM tenants WHERE slug = $1", [slug])).length +
    (await direct.db.query("SELECT 1 FROM audit_events WHERE metadata->>'slug' = $1", [slug])).length;

  async function expectOutage(): Promise<string[]> {
    const failedSlugs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const slug = uniqueSlug("down");
      const started = Date.now();
      const res = await createTenant(slug);
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS * 3 + 1000);
      expect(res.statusCode).toBe(503);
      expect(res.headers["content-type"]).toContain("application/problem+json");
      expect(res.json()).toMatchObject({ code: "unavailable", status: 503 });
      expect(res.headers["retry-after"]).toBeDefined();
      failedSlugs.push(slug);
    }
    const list = await t.call("auditor", "GET", "/v1/tenants");
    expect(list.statusCode).toBe(503);
    expect((await t.call(null, "GET", "/readyz")).statusCode).toBe(503);
    expect((await t.call(null, "GET", "/healthz")).statusCode).toBe(200);
    return failedSlugs;
  }

  async function expectRecovery(): Promise<void> {
    const deadline = Date.now() + 15_000;
    let ready = 0;
    while (Date.now() < deadline) {
      ready = (await t.call(null, "GET", "/readyz")).statusCode;
      if (ready === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready).toBe(200);
    expect((await createTenant(uniqueSlug("back"))).statusCode).toBe(201);
  }

  it("serves normally through the proxy", async () => {
    expect((await createTenant(uniqueSlug("up"))).statusCode).toBe(201);
  });

  it.each(["refuse", "blackhole"] as const)(
    "connections %s: 503 quickly, readyz 503, recovers, no partial change",
    async (mode) => {
      proxy.sever(mode);
      const failed = await expectOutage();
      proxy.restore();
      await expectRecovery();
      for (const slug of failed) expect(await exists(slug), slug).toBe(0);
    },
    60_000,
  );
});
