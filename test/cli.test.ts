import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newTestToken, uniqueSlug } from "./helpers/app.js";
import { migratedDataDir, runCli, type ServerProcess, startServerProcess } from "./helpers/process.js";

describe("the CLI against a running registry", () => {
  const dataDir = migratedDataDir("tr-cli-");
  const emptyDir = mkdtempSync(join(tmpdir(), "tr-cli-empty-"));
  const admin = newTestToken();
  let server: ServerProcess;
  let env: Record<string, string>;
  // DATA_DIR points at an empty folder, so no admin-token file on this machine stands in for REGISTRY_TOKEN.
  const cli = (...args: string[]) => runCli(args, env);
  const json = async (...args: string[]) => {
    const r = await cli(...args, "--json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout);
  };

  beforeAll(async () => {
    server = await startServerProcess({ DATA_DIR: dataDir, REGISTRY_ADMIN_TOKEN: admin });
    env = { REGISTRY_URL: server.url, REGISTRY_TOKEN: admin, DATA_DIR: emptyDir };
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(emptyDir, { recursive: true, force: true });
  });

  it("runs a tenant through its life, by slug, in tables and in JSON", async () => {
    const slug = uniqueSlug("cli");
    const created = await json("tenants", "create", slug, "Globex Corp", "--plan", "growth");
    expect(created).toMatchObject({ slug, name: "Globex Corp", plan: "growth", status: "pending" });

    const table = await cli("tenants", "get", slug);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^slug: +${slug}$`, "m"));
    expect((await json("tenants", "get", created.id)).slug).toBe(slug);

    const updated = await json("tenants", "update", slug, "--sales-owner", "sam", "--plan", "enterprise");
    expect(updated).toMatchObject({ plan: "enterprise", sales_owner: "sam" });
    expect((await json("tenants", "update", slug, "--sales-owner", "")).sales_owner).toBeNull();

    const listed = await cli("tenants", "list", "--q", slug);
    expect(listed.stdout.split("\n")[0]).toMatch(/^ID +SLUG +NAME +PLAN +KIND +STATUS +CREATED_AT$/);
    expect(listed.stdout).toContain(slug);

    expect((await json("tenants", "activate", slug)).status).toBe("active");
    expect((await json("tenants", "cancel", slug)).status).toBe("cancelled");
  });

  it("requests, trials, grants and revokes products", async () => {
    const slug = uniqueSlug("cli");
    await json("tenants", "create", slug, "Products");
    expect((await json("catalog", "list")).products.map((p: { key: string }) => p.key)).toContain("billing");
    expect((await json("catalog", "request", slug, "billing")).status).toBe("requested");
    expect((await json("catalog", "trial", slug, "analytics")).status).toBe("trial");
    expect((await json("entitlements", "grant", slug, "messaging")).status).toBe("active");
    expect((await json("entitlements", "revoke", slug, "messaging")).status).toBe("cancelled");
    const table = await cli("entitlements", "list", slug);
    expect(table.stdout).toMatch(/^analytics +trial /m);
    expect(table.stdout).toMatch(/^billing +requested /m);
    expect(table.stdout).toMatch(/^messaging +cancelled /m);
  });

  it("issues a key once, verifies it, revokes it, and then it is refused", async () => {
    const slug = uniqueSlug("cli");
    await json("tenants", "create", slug, "Keyed");
    const created = await json("keys", "create", slug, "--name", "ci", "--scope", "read", "--scope", "write");
    expect(created.key).toMatch(/^bp_[A-Za-z0-9_-]{22}$/);
    expect(created.scopes).toEqual(["read", "write"]);

    const ok = await cli("keys", "verify", created.key, "--scope", "write");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^valid: +true$/m);

    const listed = await cli("keys", "list", slug);
    expect(listed.stdout).toContain(created.prefix);
    expect(listed.stdout).not.toContain(created.key);

    expect((await cli("keys", "revoke", created.id)).stdout).toBe(`revoked ${created.id}\n`);
    const refused = await cli("keys", "verify", created.key, "--json");
    expect(refused.code).toBe(3);
    expect(JSON.parse(refused.stdout)).toEqual({ valid: false, reason: "revoked" });
  });

  it("whoami names the token's principal and role", async () => {
    expect(await json("whoami")).toEqual({ name: "admin", role: "admin", kind: "bootstrap" });
    const table = await cli("whoami");
    expect(table.code).toBe(0);
    expect(table.stdout).toBe("name: admin\nrole: admin\nkind: bootstrap\n");
  });

  it("creates, lists, rotates and revokes managed tokens, by name", async () => {
    const name = uniqueSlug("worker");
    const created = await json("tokens", "create", name, "--role", "service", "--description", "nightly job");
    expect(created).toMatchObject({ name, role: "service", description: "nightly job" });
    expect(created.token).toMatch(/^rt_/);
    const whoami = await runCli(["whoami", "--json"], { ...env, REGISTRY_TOKEN: created.token });
    expect(JSON.parse(whoami.stdout)).toEqual({ name, role: "service", kind: "token" });

    const rotated = await json("tokens", "rotate", name, "--grace", "0");
    expect(rotated).toMatchObject({ name, role: "service" });
    expect(rotated.id).not.toBe(created.id);
    const table = await cli("tokens", "list");
    expect(table.stdout.split("\n")[0]).toMatch(/^ID +PREFIX +NAME +ROLE +EXPIRES_AT/);
    expect(table.stdout).toContain(rotated.prefix);
    expect(table.stdout).not.toContain(rotated.token);

    expect(await json("tokens", "revoke", name)).toEqual({ revoked: rotated.id });
    const none = await cli("tokens", "revoke", name);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`no live token named "${name}"`);
  });

  it("prints a registry problem's title and detail, never a stack trace, and exits 1", async () => {
    const slug = uniqueSlug("cli");
    await json("tenants", "create", slug, "Twice");
    const again = await cli("tenants", "create", slug, "Twice");
    expect(again.code).toBe(1);
    expect(again.stdout).toBe("");
    expect(again.stderr).toMatch(/^tenant-registry: Conflict: .+\n$/);

    const bad = await cli("tenants", "create", "Not A Slug", "x");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/Bad Request: .*\n {2}slug: /);

    const wrongToken = await runCli(["tenants", "list"], { ...env, REGISTRY_TOKEN: newTestToken() });
    expect(wrongToken.code).toBe(1);
    expect(wrongToken.stderr).toMatch(/^tenant-registry: Unauthorized: /);

    const down = await runCli(["catalog", "list", "--url", "http://127.0.0.1:9"], env);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^tenant-registry: Registry unreachable: /);
    for (const r of [again, bad, wrongToken, down]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("exits 2 on usage errors", async () => {
    const missing = await cli("tenants", "create", "only-a-slug");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing required argument 'name'");
    expect((await cli("tenants", "list", "--limit", "0")).code).toBe(2);
    expect((await cli("tenants", "list", "--no-such-option")).code).toBe(2);
    const noToken = await runCli(["tenants", "list"], { REGISTRY_URL: server.url, DATA_DIR: emptyDir });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain("no token");
    expect((await cli("keys", "--help")).code).toBe(0);
  });
});
