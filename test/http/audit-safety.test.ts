import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_METADATA_MAX_DEPTH } from "../../src/schemas/audit.js";
import type { Db } from "../../src/store/db.js";
import { migrate } from "../../src/store/migrate.js";
import { openPg } from "../../src/store/pg.js";
import { openPglite } from "../../src/store/pglite.js";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ENGINES, type TestDb } from "../helpers/db.js";
import { snapshotBlob } from "../helpers/snapshot.js";

/** A metadata object nested `depth` levels: the object is level 1, then arrays. */
const nested = (depth: number): Record<string, unknown> => {
  let v: unknown[] = [];
  for (let i = 2; i < depth; i++) v = [v];
  return depth === 1 ? {} : { deep: v };
};
const nestedText = (depth: number) => `{"deep":${"[".repeat(depth - 1)}${"]".repeat(depth - 1)}}`;

describe.each(ENGINES)("audit data safety on %s", (engine) => {
  let t: TestApp;
  let tenantId = "";
  beforeAll(async () => {
    t = await openTestApp(engine);
    tenantId = (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Safety" })).json().id;
  });
  afterAll(() => t.close());

  const count = async () => (await t.store.db.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_events"))[0]?.n;
  const raw = (url: string, payload: string) =>
    t.app.inject({
      method: "POST",
      url,
      headers: { authorization: `Bearer ${t.tokens.service}`, "content-type": "application/json" },
      payload,
    });
  /** Refused with 400 naming `field` (as a prefix), and nothing stored. */
  const refused = async (res: Awaited<ReturnType<typeof raw>>, field: string, before: number | undefined) => {
    expect(res.statusCode, res.body).toBe(400);
    expect(res.headers["content-type"]).toContain("application/problem+json");
    const fields: string[] = res.json().errors.map((e: { field: string }) => e.field);
    expect(
      fields.some((f) => f.startsWith(field)),
      `${fields.join(", ")} should name ${field}`,
    ).toBe(true);
    expect(await count()).toBe(before);
  };

  describe("metadata nesting", () => {
    it(`stores metadata nested exactly ${AUDIT_METADATA_MAX_DEPTH} levels and reads it back`, async () => {
      const metadata = nested(AUDIT_METADATA_MAX_DEPTH);
      const res = await t.call("service", "POST", "/v1/audit", { action: "deep.ok", tenant_id: tenantId, metadata });
      expect(res.statusCode, res.body).toBe(201);
      const listed = await t.call("auditor", "GET", `/v1/audit?tenant_id=${tenantId}&action=deep.ok`);
      expect(listed.statusCode).toBe(200);
      expect(listed.json().events[0].metadata).toEqual(metadata);
    });

    it("refuses one level more, single and batch, naming the field; nothing stored", async () => {
      const before = await count();
      const tooDeep = nested(AUDIT_METADATA_MAX_DEPTH + 1);
      await refused(await t.call("service", "POST", "/v1/audit", { action: "deep.no", metadata: tooDeep }), "body/metadata/deep", before);
      const events = [{ action: "deep.fine" }, { action: "deep.no", metadata: tooDeep }];
      await refused(await t.call("service", "POST", "/v1/audit/batch", { events }), "body/events/1/metadata/deep", before);
    });

    it.each([100, 4_111, 10_000, 100_000])("refuses metadata nested %i levels with a 400, never a 500", async (depth) => {
      const before = await count();
      await refused(await raw("/v1/audit", `{"action":"deep.no","metadata":${nestedText(depth)}}`), "body/metadata", before);
      await refused(
        await raw("/v1/audit/batch", `{"events":[{"action":"deep.no","metadata":${nestedText(depth)}}]}`),
        "body/events/0/metadata",
        before,
      );
    });

    it("refuses any deeply nested body on other routes with a 400", async () => {
      for (const [url, payload] of [
        ["/v1/tenants", `{"name":${"[".repeat(10_000)}${"]".repeat(10_000)}}`],
        ["/v1/internal/api-keys/verify", `{"key":${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}}`],
        ["/v1/entitlements", "[".repeat(50_000) + "]".repeat(50_000)],
      ] as const) {
        const res = await t.app.inject({
          method: "POST",
          url,
          headers: { authorization: `Bearer ${t.tokens.admin}`, "content-type": "application/json" },
          payload,
        });
        expect(res.statusCode, `${url}: ${res.body.slice(0, 200)}`).toBe(400);
        expect(res.json().errors[0].field).toMatch(/^body\//);
      }
    });

    it("the database refuses too-deep metadata whoever writes it (CHECK constraint)", async () => {
      await expect(
        t.store.db.query("INSERT INTO audit_events (actor_id, action, metadata) VALUES ('x', 'deep.sql', $1::jsonb)", [nestedText(33)]),
      ).rejects.toMatchObject({ code: "invalid_input" });
      await t.store.db.query("INSERT INTO audit_events (actor_id, action, metadata) VALUES ('x', 'deep.sql', $1::jsonb)", [nestedText(32)]);
    });
  });

  describe("reserved actions", () => {
    it.each([
      "tenant.cancelled",
      "tenant.created",
      "api_key.revoked",
      "entitlement.granted",
      "webhook.created",
      "catalog.synced",
      "tenant.anything_new",
      "token.created",
      "token.anything_new",
      "session.started",
      "person.disabled",
    ])("refuses %s from products, single and batch; nothing stored", async (action) => {
      const before = await count();
      await refused(await t.call("service", "POST", "/v1/audit", { action, actor_id: "admin" }), "body/action", before);
      await refused(await t.call("admin", "POST", "/v1/audit", { action }), "body/action", before);
      const events = [{ action: "ok.first" }, { action }];
      await refused(await t.call("service", "POST", "/v1/audit/batch", { events }), "body/events/1/action", before);
    });

    it("still accepts look-alikes outside the reserved prefixes", async () => {
      for (const action of [
        "tenants.exported",
        "tenant",
        "apikey.rotated",
        "webhooks.listed",
        "catalogue.viewed",
        "tokens.listed",
        "sessions.counted",
        "personal.note",
      ]) {
        const res = await t.call("service", "POST", "/v1/audit", { action });
        expect(res.statusCode, `${action}: ${res.body}`).toBe(201);
      }
    });
  });

  describe("values the store cannot hold are refused up front", () => {
    it.each([
      ["NUL in a metadata value", '{"action":"nul.v","metadata":{"note":"a\\u0000b"}}', "body/metadata/note"],
      ["NUL in a metadata key", '{"action":"nul.k","metadata":{"a\\u0000":1}}', "body/metadata/a"],
      ["a lone surrogate in metadata", '{"action":"sur.v","metadata":{"x":["\\udc00"]}}', "body/metadata/x/0"],
      ["a lone high surrogate in target_id", '{"action":"sur.t","target_id":"a\\ud800"}', "body/target_id"],
      ["NUL in target_type", '{"action":"nul.t","target_type":"\\u0000"}', "body/target_type"],
      ["NUL in a batch", '{"events":[{"action":"ok.one"},{"action":"nul.b","target_id":"\\u0000"}]}', "body/events/1/target_id"],
    ])("%s", async (_label, payload, field) => {
      const before = await count();
      const url = payload.startsWith('{"events"') ? "/v1/audit/batch" : "/v1/audit";
      await refused(await raw(url, payload), field, before);
    });

    it("a paired surrogate (an emoji) is fine", async () => {
      const res = await raw("/v1/audit", '{"action":"emoji.ok","metadata":{"x":"\\ud83e\\udd84"}}');
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json().metadata.x).toBe("🦄");
    });

    it.each(["2026-01-01T00:00:00+16:00", "2026-01-01T00:00:00-23:59", "0000-01-01T00:00:00Z"])(
      "refuses occurred_at %s naming the field",
      async (occurred_at) => {
        const before = await count();
        const res = await t.call("service", "POST", "/v1/audit", { action: "time.off", occurred_at });
        await refused(res, "body/occurred_at", before);
        expect(res.json().errors).toContainEqual({
          field: "body/occurred_at",
          message: "must be an RFC 3339 date-time with a year from 0001 to 9999 and an offset within ±15:59",
        });
      },
    );

    it("accepts offsets up to ±15:59", async () => {
      for (const [given, utc] of [
        ["2026-01-01T15:59:00+15:59", "2026-01-01T00:00:00.000Z"],
        ["2026-01-01T00:00:00-15:59", "2026-01-01T15:59:00.000Z"],
      ]) {
        const res = await t.call("service", "POST", "/v1/audit", { action: "time.on", occurred_at: given });
        expect(res.statusCode, res.body).toBe(201);
        expect(res.json().occurred_at).toBe(utc);
      }
    });

    it("NUL in a tenant name or a query parameter is a 400 naming it", async () => {
      const res = await t.app.inject({
        method: "POST",
        url: "/v1/tenants",
        headers: { authorization: `Bearer ${t.tokens.admin}`, "content-type": "application/json" },
        payload: `{"slug":"${uniqueSlug()}","name":"Acme\\u0000"}`,
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().errors[0].field).toBe("body/name");
      const q = await t.call("admin", "GET", "/v1/tenants?q=a%00b");
      expect(q.statusCode).toBe(400);
      expect(q.json().errors[0].field).toBe("querystring/q");
    });
  });
});

describe.each(ENGINES)("stored events stay readable on %s", (engine) => {
  /** A store that survives close and reopen: a PGlite data dir, or a PostgreSQL database. */
  async function reopenable(): Promise<{ store: TestDb; reopen(): Promise<TestDb>; cleanup(): Promise<void> }> {
    if (engine === "pglite") {
      const dir = mkdtempSync(join(tmpdir(), "tr-reopen-"));
      const open = async (first: boolean): Promise<TestDb> => {
        const db = await openPglite({ dataDir: dir, ...(first ? { loadDataDir: snapshotBlob() } : {}) });
        return { engine, db, url: undefined, connect: async () => db, close: () => db.close() };
      };
      return { store: await open(true), reopen: () => open(false), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    }
    const { openTestDb } = await import("../helpers/db.js");
    const store = await openTestDb(engine);
    const url = store.url as string;
    const extra: Db[] = [];
    return {
      store: { ...store, close: () => store.db.close() },
      reopen: async () => {
        const db = openPg({ url, poolSize: 2, timeoutMs: 10_000, onError: () => {} });
        extra.push(db);
        return { engine, db, url, connect: async () => db, close: () => db.close() };
      },
      cleanup: () => store.close(),
    };
  }

  it("the deepest allowed metadata reads back after the store is closed and reopened", async () => {
    const r = await reopenable();
    try {
      let t = await openTestApp(engine, r.store);
      const metadata = { ...nested(AUDIT_METADATA_MAX_DEPTH), note: "kept" };
      const made = await t.call("service", "POST", "/v1/audit", { action: "restart.deep", metadata });
      expect(made.statusCode, made.body).toBe(201);
      await t.close();
      await r.store.close();

      const again = await r.reopen();
      t = await openTestApp(engine, again);
      const listed = await t.call("auditor", "GET", "/v1/audit?action=restart.deep");
      expect(listed.statusCode, listed.body.slice(0, 200)).toBe(200);
      expect(listed.json().events.map((e: { metadata: unknown }) => e.metadata)).toEqual([metadata]);
      await t.close();
      await again.close();
    } finally {
      await r.cleanup();
    }
  }, 60_000);

  it("migration 0005 quarantines metadata stored too deep before it, and reads work again", async () => {
    const r = await reopenable();
    try {
      const db = r.store.db;
      // Back to the schema before 0005, then store what the old server let through.
      await db.exec(`
        ALTER TABLE audit_events DROP CONSTRAINT audit_events_metadata_depth;
        DROP TABLE audit_quarantine;
        DROP FUNCTION audit_metadata_too_deep(jsonb);
        DELETE FROM schema_migrations WHERE version = 5;`);
      await db.query(
        `INSERT INTO audit_events (actor_id, action, metadata) VALUES
           ('products', 'poison.before', '{"fine": true}'),
           ('rep@example.com', 'poison.row', $1::jsonb),
           ('products', 'poison.after', $2::jsonb)`,
        [`{"principal":"products","deep":${"[".repeat(4_111)}${"]".repeat(4_111)}}`, nestedText(32)],
      );
      expect(await migrate(db)).toEqual(["0005_audit_metadata_depth.sql"]);

      const t = await openTestApp(engine, r.store);
      const listed = await t.call("auditor", "GET", "/v1/audit?limit=1000");
      expect(listed.statusCode, listed.body.slice(0, 200)).toBe(200);
      const byAction = new Map(listed.json().events.map((e: { action: string; metadata: unknown }) => [e.action, e.metadata]));
      expect(byAction.get("poison.before")).toEqual({ fine: true });
      expect(byAction.get("poison.after")).toEqual(nested(32));
      expect(byAction.get("poison.row")).toEqual({
        quarantined: "metadata nested deeper than 32 levels; the original is in audit_quarantine",
        principal: "products",
      });
      const [q] = await db.query<{ reason: string; length: number }>(
        "SELECT q.reason, length(q.metadata) AS length FROM audit_quarantine q JOIN audit_events e ON e.id = q.event_id WHERE e.action = 'poison.row'",
      );
      expect(q?.reason).toBe("metadata nested deeper than 32 levels");
      expect(q?.length).toBeGreaterThan(8_000);
      // Append-only again after the repair.
      await expect(db.query("UPDATE audit_events SET metadata = '{}' WHERE action = 'poison.before'")).rejects.toBeTruthy();
      await t.close();
      await r.store.close();
    } finally {
      await r.cleanup();
    }
  }, 60_000);
});
