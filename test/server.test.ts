import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { newTestToken } from "./helpers/app.js";
import { openTestDb, type TestDb } from "./helpers/db.js";
import { migratedDataDir, runCli, startServerProcess } from "./helpers/process.js";

describe("the server process, embedded default", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tr-data-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("starts with no settings, prints a kept admin token once, serves acme, persists across restarts, stops cleanly on SIGTERM", async () => {
    // A fresh data dir runs initdb, which can take a minute on a busy machine.
    const first = await startServerProcess({ DATA_DIR: dataDir }, undefined, 120_000);
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
    // Printed once, when generated; never again (stdout may be a kept log).
    expect(second.stdout()).not.toContain(token);
    expect(second.stdout()).not.toContain("Admin token");
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    const again = await fetch(`${second.url}/v1/tenants/by-slug/survivor`, { headers: auth });
    expect(again.status).toBe(200);
    const list = (await (await fetch(`${second.url}/v1/tenants?q=acme`, { headers: auth })).json()) as { tenants: unknown[] };
    expect(list.tenants).toHaveLength(1);
    expect(second.stdout()).not.toMatch(/"level":[45]0/);
    expect(await second.stop("SIGINT")).toBe(0);
  }, 240_000);

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

describe("the server process and its catalog file", () => {
  const dir = mkdtempSync(join(tmpdir(), "tr-catalog-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a bad catalog file stops the start with exit 2, naming the file, the entry and the field", async () => {
    const file = join(dir, "bad.json");
    writeFileSync(file, '{"products": [\n  {"key": "ok", "name": "Fine"},\n  {"key": "trial", "name": "T", "trial_days": -1}\n]}\n');
    const res = await runCli(["serve"], { DATABASE_URL: "memory:", CATALOG_FILE: file });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`catalog file ${file} is not valid`);
    expect(res.stderr).toMatch(/line 3:\d+, products\[1\] \("trial"\)\.trial_days: must be an integer from 1 to 365/);
    expect(res.stderr).not.toMatch(/\bat .+:\d+:\d+/);
    const missing = await runCli(["serve"], { DATABASE_URL: "memory:", CATALOG_FILE: join(dir, "nope.json") });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nope.json cannot be read (no such file)");
  });

  it("serves the shipped catalog by default and CATALOG_FILE's when set; a product left out is retired on the next start", async () => {
    const dataDir = migratedDataDir("tr-catalog-data-");
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const token = newTestToken();
    const env = { DATA_DIR: dataDir, REGISTRY_ADMIN_TOKEN: token };
    const keys = async (url: string) => {
      const res = await fetch(`${url}/v1/catalog`, { headers: { authorization: `Bearer ${token}` } });
      return ((await res.json()) as { products: { key: string }[] }).products.map((p) => p.key);
    };
    const shipped = await startServerProcess(env);
    expect(await keys(shipped.url)).toEqual(["analytics", "billing", "identity", "messaging"]);
    expect(await shipped.stop()).toBe(0);

    const file = join(dir, "catalog.json");
    writeFileSync(
      file,
      JSON.stringify({
        products: [
          { key: "analytics", name: "Analytics", trial_days: 7 },
          { key: "docs", name: "Docs" },
        ],
      }),
    );
    const custom = await startServerProcess({ ...env, CATALOG_FILE: file });
    expect(await keys(custom.url)).toEqual(["analytics", "docs"]);
    expect(custom.stdout()).toMatch(
      /"catalog":\{"added":\["docs"\],"updated":\["analytics"\],"restored":\[\],"retired":\["billing","identity","messaging"\]\}/,
    );
    expect(await custom.stop()).toBe(0);
  }, 60_000);
});
