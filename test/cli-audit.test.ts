import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newTestToken, uniqueSlug } from "./helpers/app.js";
import { COMPILED_CLI } from "./helpers/compiled.js";
import { migratedDataDir, runCli, type ServerProcess, startServerProcess } from "./helpers/process.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Control characters other than the newlines that end lines. */
const controlChars = (s: string) => [...s].filter((c) => c !== "\n" && (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f));

describe("the CLI's audit commands against a running registry", () => {
  const dataDir = migratedDataDir("tr-cli-audit-");
  const admin = newTestToken();
  let server: ServerProcess;
  let env: Record<string, string>;

  beforeAll(async () => {
    server = await startServerProcess({ DATA_DIR: dataDir, REGISTRY_ADMIN_TOKEN: admin });
    env = { REGISTRY_URL: server.url, REGISTRY_TOKEN: admin, DATA_DIR: dataDir };
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${admin}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    expect(res.ok, await res.clone().text()).toBe(true);
    return (await res.json()) as Record<string, unknown>;
  };
  const newTenant = async () =>
    (await api("POST", "/v1/tenants", { slug: uniqueSlug("au"), name: "Audited" })) as { id: string; slug: string };
  const append = (tenant_id: string, n: number, from = 0) =>
    api("POST", "/v1/audit/batch", {
      events: Array.from({ length: n }, (_, i) => ({ action: "doc.viewed", tenant_id, metadata: { n: from + i } })),
    });
  /** log_index turns from null to a number within about a second (the audit log); compare the rest. */
  const withoutLogIndex = ({ log_index: _, ...rest }: { id: string; log_index?: unknown }) => rest;
  /** Every event of a tenant, as the API pages them. */
  async function eventsOf(tenant_id: string): Promise<{ id: string }[]> {
    const all: { id: string }[] = [];
    let cursor = "";
    for (;;) {
      const page = (await api("GET", `/v1/audit?tenant_id=${tenant_id}&limit=1000${cursor}`)) as {
        events: { id: string }[];
        next_cursor: string | null;
      };
      all.push(...page.events);
      if (!page.next_cursor) return all;
      cursor = `&cursor=${page.next_cursor}`;
    }
  }

  it("tail --follow prints every event exactly once while writers append, across pages and repeated last pages", async () => {
    const tenant = await newTenant();
    await append(tenant.id, 3);
    // Pages of 2 make the tail cross page boundaries and get its last page back on every poll.
    const child = spawn(
      process.execPath,
      [COMPILED_CLI, "audit", "tail", "--follow", "--json", "--tenant", tenant.slug, "--limit", "2", "--interval", "100"],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const lines = () => out.split("\n").filter(Boolean);
    const waitFor = async (n: number) => {
      for (let i = 0; i < 200 && lines().length < n; i++) await new Promise((r) => setTimeout(r, 100));
    };
    try {
      await waitFor(4); // tenant.created and 3 events
      for (let round = 0; round < 4; round++) await append(tenant.id, round + 1, 100 * round);
      const expected = await eventsOf(tenant.id);
      expect(expected).toHaveLength(14);
      await waitFor(expected.length);
      // Polls after catching up must print nothing new.
      await new Promise((r) => setTimeout(r, 500));
      const ids = lines().map((l) => JSON.parse(l).id as string);
      expect(ids).toEqual(expected.map((e) => e.id));
      expect(err).toBe("");
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("tail without --follow prints what is there and exits; list shows one page", async () => {
    const tenant = await newTenant();
    await append(tenant.id, 2);
    const tail = await runCli(["audit", "tail", "--tenant", tenant.id], env);
    expect(tail.code).toBe(0);
    const [header, ...rows] = tail.stdout.split("\n").filter(Boolean);
    expect(header).toMatch(/^CREATED_AT +ID +ACTION +ACTOR/);
    expect(rows.map((l) => l.split(/\s+/)[2])).toEqual(["tenant.created", "doc.viewed", "doc.viewed"]);

    const list = await runCli(["audit", "list", "--tenant", tenant.slug, "--limit", "2"], env);
    expect(list.code).toBe(0);
    expect(list.stdout.split("\n")[0]).toMatch(/^ID +CREATED_AT +ACTION +ACTOR_ID/);
    expect(list.stdout.trim().split("\n")).toHaveLength(3);
    expect(list.stderr).toMatch(/^more: --cursor \S+\n$/);
  });

  it("export writes every matching event as NDJSON or CSV, to stdout or a file, with no progress line off a terminal", async () => {
    const tenant = await newTenant();
    await append(tenant.id, 5);
    const expected = await eventsOf(tenant.id);

    const ndjson = await runCli(["audit", "export", "--tenant", tenant.slug, "--limit", "2"], env);
    expect(ndjson.code).toBe(0);
    expect(ndjson.stderr).toBe("");
    expect(
      ndjson.stdout
        .trim()
        .split("\n")
        .map((l) => withoutLogIndex(JSON.parse(l))),
    ).toEqual(expected.map(withoutLogIndex));

    const file = join(dataDir, "export.csv");
    const csv = await runCli(
      ["audit", "export", "--tenant", tenant.id, "--format", "csv", "--output", file, "--action", "doc.viewed"],
      env,
    );
    expect(csv.code).toBe(0);
    expect(csv.stdout).toBe("");
    expect(csv.stderr).toBe(`wrote 5 events to ${file}\n`);
    const rows = readFileSync(file, "utf8").trim().split("\n");
    expect(rows[0]).toBe("id,created_at,action,actor_id,tenant_id,product,target_type,target_id,metadata,occurred_at");
    expect(rows).toHaveLength(6);
    expect(rows[1]).toContain(`doc.viewed,admin,${tenant.id},,,,"{""n"":0}"`);
  });

  it("shows control characters escaped in tables and neutralises formulas in CSV", async () => {
    const evil = "\u001b]0;pwned\u0007\u001b[2J";
    const tenant = (await api("POST", "/v1/tenants", { slug: uniqueSlug("esc"), name: `Evil ${evil} Corp` })) as {
      id: string;
      slug: string;
    };
    for (const target_id of ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]) {
      await api("POST", "/v1/audit", { action: "formula.try", tenant_id: tenant.id, target_type: "cell", target_id });
    }
    await api("POST", "/v1/audit", { action: "escape.try", tenant_id: tenant.id, target_type: "doc", target_id: `a${evil}` });

    const table = await runCli(["tenants", "get", tenant.slug], env);
    expect(table.code).toBe(0);
    expect(controlChars(table.stdout)).toEqual([]);
    expect(table.stdout).toContain("Evil \\x1b]0;pwned\\x07\\x1b[2J Corp");
    const tail = await runCli(["audit", "tail", "--tenant", tenant.id, "--action", "escape.try"], env);
    expect(tail.code).toBe(0);
    expect(controlChars(tail.stdout)).toEqual([]);
    expect(tail.stdout).toContain("doc/a\\x1b]0;pwned");

    const csv = await runCli(["audit", "export", "--tenant", tenant.id, "--format", "csv", "--action", "formula.try"], env);
    expect(csv.code).toBe(0);
    const targets = csv.stdout
      .trim()
      .split(/\n(?=\d)/)
      .slice(1)
      .map((row) =>
        row
          .split(",cell,")[1]
          ?.split(",{")[0]
          ?.replace(/,"?\{.*$/s, ""),
      );
    expect(targets).toEqual(['"\'=HYPERLINK(""http://x"")"', "'+1+1", "'-2+3", "'@SUM(A1)", "'\tx", '"\'\rx"']);
  });

  it("rejects bad times as usage errors and bad filters as problems", async () => {
    expect((await runCli(["audit", "export", "--since", "yesterday"], env)).code).toBe(2);
    const bad = await runCli(["audit", "list", "--action", "Not An Action"], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^tenant-registry: Bad Request: /);
  });
});
