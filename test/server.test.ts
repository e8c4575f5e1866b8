import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newTestToken } from "./helpers/app.js";
import { openTestDb, type TestDb } from "./helpers/db.js";
import { runCli, startServerProcess } from "./helpers/process.js";

describe("the server process, embedded default", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tr-data-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("starts with no settings, prints a kept admin token, serves acme, persists across restarts, stops cleanly on SIGTERM", async () => {
    const first = await startServerProcess({ DATA_DIR: dataDir });
    const token = /Admin token \(generated\): (\S+)/.exec(first.stdout())?.[1];
    expect(token).toBeDefined();
    expect(statSync(join(dataDir, "admin-token")).mode & 0o777).toBe(0o600);
    const auth = { authorization: `Bearer ${token}` };

    const acme = await fetch(`${first.url}/v1/tenants/by-slug/acme`, { headers: auth });
    expect(acme.status).toBe(200);
    expect(await acme.json()).toMatchObject({ slug: "acme", kind: "demo" });

    const created = await fetch(`${first.url}/v1/tenants`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ slug: "survivor", name: "Survives restarts" }),
    });
    expect(created.status).toBe(201);
    expect(await first.stop("SIGTERM")).toBe(0);
    expect(first.stdout()).toContain('"msg":"stopped"');

    const second = await startServerProcess({ DATA_DIR: dataDir });
    expect(second.stdout()).toContain(`Admin token: ${token}`);
    const again = await fetch(`${second.url}/v1/tenants/by-slug/survivor`, { headers: auth });
    expect(again.status).toBe(200);
    const list = (await (await fetch(`${second.url}/v1/tenants?q=acme`, { headers: auth })).json()) as { tenants: unknown[] };
    expect(list.tenants).toHaveLength(1);
    expect(second.stdout()).not.toMatch(/"level":[45]0/);
    expect(await second.stop("SIGINT")).toBe(0);
  }, 60_000);

  it("a bad setting stops the process with exit 2 and a message saying how to fix it", async () => {
    const res = await runCli(["serve"], { PORT: "http", DATA_DIR: dataDir });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('PORT="http": expected an integer from 0 to 65535');
    expect(res.stderr).not.toMatch(/\bat .+:\d+:\d+/);
  });

  it("token prints a strong random token", async () => {
    const a = await runCli(["token"], {});
    const b = await runCli(["token"], {});
    expect(a.stdout.trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.stdout).not.toBe(b.stdout);
  });
});

describe.runIf(process.env.TEST_DATABASE_URL)("the server process on PostgreSQL", () => {
  let store: TestDb;
  let url = "";
  beforeAll(async () => {
    store = await openTestDb("postgres");
    url = store.url ?? "";
  });
  afterAll(() => store.close());

  it("refuses to start without an admin token", async () => {
    const res = await runCli(["serve"], { DATABASE_URL: url });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("REGISTRY_ADMIN_TOKEN is required");
  });

  it("migrates, starts, is ready, seeds nothing, and stops on SIGTERM", async () => {
    const migrated = await runCli(["migrate"], { DATABASE_URL: url });
    expect(migrated.code).toBe(0);
    const token = newTestToken();
    const server = await startServerProcess({ DATABASE_URL: url, REGISTRY_ADMIN_TOKEN: token });
    expect(server.stdout()).not.toContain("Admin token");
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const res = await fetch(`${server.url}/v1/tenants?limit=1`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(await server.stop()).toBe(0);
  }, 60_000);
});
