import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { type Running, startServer } from "../src/server.js";
import { newTestToken, uniqueSlug } from "./helpers/app.js";
import { runCli } from "./helpers/process.js";

const VERSION = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

describe("the CLI as people type it", () => {
  const admin = newTestToken();
  let running: Running;
  let hostPort = "";

  beforeAll(async () => {
    running = await startServer(loadConfig({ DATABASE_URL: "memory:", REGISTRY_ADMIN_TOKEN: admin, PORT: "0" }), createLogger("silent"));
    hostPort = new URL(running.url).host;
  }, 180_000);
  afterAll(() => running?.stop());

  it("suggests the command meant by a typo instead of running serve", async () => {
    const res = await runCli(["tenant", "list"], {});
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("unknown command 'tenant'; did you mean 'tenants'?");
    expect(res.stderr).not.toContain("serve'");
  });

  it("prints its version", async () => {
    const res = await runCli(["--version"], {});
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toBe(VERSION);
  });

  it("takes a URL without a scheme as http://, and names what was not found", async () => {
    const res = await runCli(["tenants", "get", "no-such-tenant", "--url", hostPort, "--token", admin], {});
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('tenant not found: "no-such-tenant"');
    const grant = await runCli(["entitlements", "grant", "acme", "no-such-product", "--url", hostPort, "--token", admin], {});
    expect(grant.stderr).toMatch(/not found: "(acme|no-such-product)"/);
  });

  it("explains a URL it cannot use", async () => {
    const res = await runCli(["tenants", "list", "--url", "ftp://example.test", "--token", admin], {});
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("expected an http:// or https:// URL");
  });

  it("audit tail prints a header and fixed-width columns", async () => {
    const res = await runCli(["audit", "tail", "--url", running.url, "--token", admin], {});
    expect(res.code).toBe(0);
    const [header, ...rows] = res.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^CREATED_AT\s+ID\s+ACTION\s+ACTOR\s+TENANT\s+PRODUCT\s+TARGET$/);
    expect(rows.length).toBeGreaterThan(0);
    const actionAt = header?.indexOf("ACTION") ?? -1;
    for (const row of rows) expect(row[actionAt - 1]).toBe(" ");
    expect(rows.every((r) => /^\S+\s+\d+\s{2}\S/.test(r))).toBe(true);
  });

  it("says what a bad value should be, one line per field in words; --json keeps the API's raw entries", async () => {
    const as = ["--url", running.url, "--token", admin];
    const slug = await runCli(["tenants", "create", "A!", "Bad slug", ...as], {});
    expect(slug.code).toBe(1);
    expect(slug.stderr).toContain("Bad Request: a value is not valid:\n");
    expect(slug.stderr).toContain(
      "\n  slug: 3–63 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen\n",
    );
    expect(slug.stderr).not.toContain("must match pattern");
    expect(slug.stderr.match(/^ {2}slug:/gm)).toHaveLength(1);

    const tenant = uniqueSlug("ux");
    expect((await runCli(["tenants", "create", tenant, "UX", ...as], {})).code).toBe(0);
    const date = await runCli(["keys", "create", tenant, "--name", "k", "--expires-at", "next tuesday", "--scope", "a b", ...as], {});
    expect(date.code).toBe(1);
    // One bad date was four raw lines (pattern, format, "must be null", "not one of the allowed values"): now one.
    const lines = date.stderr.trimEnd().split("\n").slice(1);
    expect(lines).toEqual([
      "  scopes[0]: 1–100 printable ASCII characters, no spaces",
      "  expires_at: an RFC 3339 date-time such as 2030-01-31T09:30:00Z (years 0001 to 9999)",
    ]);

    const raw = await runCli(["tenants", "create", "A!", "Bad slug", "--json", ...as], {});
    expect(raw.code).toBe(1);
    expect(raw.stderr).toContain('body/slug: must match pattern "^[a-z][a-z0-9-]*[a-z0-9]$"');
  });
});
