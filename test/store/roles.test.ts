import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { startServer } from "../../src/server.js";
import { grantServerRole } from "../../src/store/grants.js";
import { migrate } from "../../src/store/migrate.js";
import { openPg } from "../../src/store/pg.js";
import { newTestToken, uniqueSlug } from "../helpers/app.js";

const BASE = process.env.TEST_DATABASE_URL;
const noop = () => {};

/**
 * A URL for `database` as `user` (trust auth on the test server), next to TEST_DATABASE_URL.
 * Only called inside hooks and tests: without TEST_DATABASE_URL the file must still load (and skip).
 */
function urlFor(database: string, user?: string): string {
  if (!BASE) throw new Error("TEST_DATABASE_URL is not set");
  const url = new URL(BASE);
  url.pathname = `/${database}`;
  if (user) url.username = user;
  return url.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: BASE });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Run one statement as `url`'s role and return the SQLSTATE it fails with (or "ok"). */
async function sqlStateOf(url: string, sql: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
    return "ok";
  } catch (err) {
    return (err as { code?: string }).code ?? "error";
  } finally {
    await c.end();
  }
}

// Two roles on PostgreSQL: the owner migrates, the server runs as a role that owns nothing.
describe.skipIf(!BASE)("PostgreSQL with a least-privilege server role", () => {
  const suffix = randomBytes(5).toString("hex");
  const role = `tr_app_${suffix}`;
  const migrated = `tr_roles_${suffix}`;
  const fresh = `tr_roles_fresh_${suffix}`;
  let serverUrl = "";

  beforeAll(async () => {
    serverUrl = urlFor(migrated, role);
    await admin(async (c) => {
      await c.query(`CREATE ROLE ${role} LOGIN`);
      await c.query(`CREATE DATABASE ${migrated}`);
      await c.query(`CREATE DATABASE ${fresh}`);
    });
    const owner = openPg({ url: urlFor(migrated), poolSize: 1, timeoutMs: 10_000, onError: noop });
    try {
      await migrate(owner);
      await owner.tx((q) => grantServerRole(q, role));
    } finally {
      await owner.close();
    }
  }, 60_000);

  afterAll(async () => {
    await admin(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${migrated} WITH (FORCE)`);
      await c.query(`DROP DATABASE IF EXISTS ${fresh} WITH (FORCE)`);
      await c.query(`DROP ROLE IF EXISTS ${role}`);
    });
  });

  it("serves as that role when migrations are current: tenants, keys, verify, audit", async () => {
    const adminToken = newTestToken();
    const service = newTestToken();
    const config = loadConfig({
      DATABASE_URL: serverUrl,
      REGISTRY_ADMIN_TOKEN: adminToken,
      REGISTRY_TOKENS: `svc:service:${service}`,
      PORT: "0",
    });
    const running = await startServer(config, createLogger("silent"));
    try {
      const call = async (token: string, method: string, url: string, payload?: unknown) => {
        const res = await running.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, payload: payload as object });
        return { status: res.statusCode, body: (res.body ? res.json() : {}) as Record<string, unknown> };
      };
      const tenant = await call(adminToken, "POST", "/v1/tenants", { slug: uniqueSlug("role"), name: "Role test" });
      expect(tenant.status).toBe(201);
      expect((await call(adminToken, "POST", `/v1/tenants/${tenant.body.id}/activate`)).status).toBe(200);
      const key = await call(adminToken, "POST", "/v1/api-keys", { tenant_id: tenant.body.id, name: "k" });
      expect(key.status).toBe(201);
      const verify = await call(service, "POST", "/v1/internal/api-keys/verify", { key: key.body.key });
      expect(verify.body).toMatchObject({ valid: true });
      expect((await call(adminToken, "DELETE", `/v1/api-keys/${key.body.id}`)).status).toBe(204);
      expect((await call(service, "POST", "/v1/audit", { action: "invoice.paid", tenant_id: tenant.body.id })).status).toBe(201);
      const audit = await call(adminToken, "GET", `/v1/audit?tenant_id=${tenant.body.id}`);
      expect((audit.body.events as { action: string }[]).map((e) => e.action)).toEqual([
        "tenant.created",
        "tenant.activated",
        "api_key.created",
        "api_key.revoked",
        "invoice.paid",
      ]);
    } finally {
      await running.stop();
    }
  }, 60_000);

  it("may not rewrite the audit trail, change the schema or disable triggers", async () => {
    const denied = "42501";
    expect(await sqlStateOf(serverUrl, "UPDATE audit_events SET action = 'x.y'")).toBe(denied);
    expect(await sqlStateOf(serverUrl, "DELETE FROM audit_events")).toBe(denied);
    expect(await sqlStateOf(serverUrl, "TRUNCATE audit_events")).toBe(denied);
    expect(await sqlStateOf(serverUrl, "ALTER TABLE tenants ADD COLUMN sneaky text")).toBe(denied);
    expect(await sqlStateOf(serverUrl, "ALTER TABLE audit_events DISABLE TRIGGER USER")).toBe(denied);
    expect(await sqlStateOf(serverUrl, "DROP TABLE api_keys")).toBe(denied);
    expect(await sqlStateOf(serverUrl, "CREATE TABLE extra (id int)")).toBe(denied);
    expect(await sqlStateOf(serverUrl, "DELETE FROM schema_migrations")).toBe(denied);
    // What it may do, it may: the same session reads and appends.
    expect(await sqlStateOf(serverUrl, "SELECT count(*) FROM audit_events")).toBe("ok");
  });

  it("may not rewrite the verifiable audit log's tables; their triggers refuse even the owner", async () => {
    const keyColumn: Record<string, string> = {
      audit_log_store: "singleton",
      audit_log_signer: "singleton",
      audit_log_leaves: "start_index",
      audit_log_nodes: "level",
      audit_log_checkpoints: "size",
    };
    for (const [table, column] of Object.entries(keyColumn)) {
      for (const sql of [`UPDATE ${table} SET ${column} = ${column}`, `DELETE FROM ${table}`, `TRUNCATE ${table}`]) {
        expect(await sqlStateOf(serverUrl, sql), sql).toBe("42501");
      }
      expect(await sqlStateOf(serverUrl, `ALTER TABLE ${table} DISABLE TRIGGER USER`)).toBe("42501");
      expect(await sqlStateOf(serverUrl, `SELECT count(*) FROM ${table}`)).toBe("ok");
      // The owner is held by the triggers too (a statement trigger: it fires on an empty table as well).
      expect(await sqlStateOf(urlFor(migrated), `TRUNCATE ${table}`)).toBe("TRA02");
    }
  });

  it("refuses to start when migrations are pending, saying to run migrate as the owner", async () => {
    const config = loadConfig({ DATABASE_URL: urlFor(fresh, role), REGISTRY_ADMIN_TOKEN: newTestToken(), PORT: "0" });
    const start = startServer(config, createLogger("silent"));
    await expect(start).rejects.toThrow(/pending \(0001_init\.sql.*\n.*tenant-registry migrate.*schema owner/s);
    // Nothing was half applied: the database has no table.
    const tables = await admin(async () => {
      const c = new pg.Client({ connectionString: urlFor(fresh) });
      await c.connect();
      try {
        return (await c.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'")).rows[0]?.n;
      } finally {
        await c.end();
      }
    });
    expect(tables).toBe(0);
  }, 60_000);

  it("migrates at start through MIGRATION_DATABASE_URL when the server's role may not", async () => {
    const config = loadConfig({
      DATABASE_URL: urlFor(fresh, role),
      MIGRATION_DATABASE_URL: urlFor(fresh),
      REGISTRY_ADMIN_TOKEN: newTestToken(),
      PORT: "0",
    });
    expect(config.migrationLockTimeoutMs).toBe(60_000);
    expect(config.migrationStatementTimeoutMs).toBe(0);
    // The tables are the owner's; the server's role has no grant on them yet, so it cannot serve: it says
    // which privileges are missing and the `migrate --grant` to run. Starting still applied the migrations.
    await expect(startServer(config, createLogger("silent"))).rejects.toThrow(
      new RegExp(`role "${role}" lacks privileges.*SELECT.* on table .*\\n.*tenant-registry migrate --grant ${role}\\b`, "s"),
    );
    const owner = openPg({ url: urlFor(fresh), poolSize: 1, timeoutMs: 10_000, onError: noop });
    try {
      const rows = await owner.query<{ n: number }>("SELECT count(*)::int AS n FROM schema_migrations");
      expect(rows[0]?.n).toBeGreaterThan(0);
    } finally {
      await owner.close();
    }
  }, 60_000);

  it("a role without grants is told which privilege is missing and the migrate --grant that fixes it", async () => {
    const bare = `tr_bare_${suffix}`;
    await admin((c) => c.query(`CREATE ROLE ${bare} LOGIN`));
    try {
      const config = loadConfig({ DATABASE_URL: urlFor(migrated, bare), REGISTRY_ADMIN_TOKEN: newTestToken(), PORT: "0" });
      const start = startServer(config, createLogger("silent"));
      await expect(start).rejects.toThrow(ConfigError);
      const message = await start.then(
        () => "",
        (err: Error) => err.message,
      );
      expect(message).not.toMatch(/internal error/);
      expect(message).toContain(`the database role "${bare}" lacks privileges the server needs:\n`);
      expect(message).toContain("\n    SELECT, INSERT on table audit_events\n");
      expect(message).toContain("\n    SELECT, INSERT, UPDATE, DELETE on table tenants\n");
      expect(message).toContain("\n    SELECT on table schema_migrations\n");
      expect(message).toContain(`Run \`tenant-registry migrate --grant ${bare}\` as the schema owner`);

      // Half the grants: only what is still missing is named.
      await admin(async (c) => {
        const db = new pg.Client({ connectionString: urlFor(migrated) });
        await db.connect();
        try {
          await db.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${bare}`);
        } finally {
          await db.end();
        }
        return c;
      });
      const again = await startServer(config, createLogger("silent")).then(
        () => "",
        (err: Error) => err.message,
      );
      expect(again).toMatch(/INSERT, UPDATE, DELETE on table api_keys/);
      expect(again).not.toMatch(/SELECT/);
    } finally {
      await admin(async (c) => {
        const db = new pg.Client({ connectionString: urlFor(migrated) });
        await db.connect();
        try {
          await db.query(`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${bare}`);
        } finally {
          await db.end();
        }
        await c.query(`DROP ROLE IF EXISTS ${bare}`);
      });
    }
  }, 60_000);
});
