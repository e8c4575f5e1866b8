import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "../../src/domain/actor.js";
import { AppError } from "../../src/domain/errors.js";
import { activateTenant, cancelTenant, createTenant, updateTenant } from "../../src/domain/tenants.js";
import { migrate } from "../../src/store/migrate.js";
import { tenantFindById, tenantFindBySlug, tenantList } from "../../src/store/tenants.js";
import { uniqueSlug } from "../helpers/app.js";
import { ENGINES, openTestDb, type TestDb } from "../helpers/db.js";

const actor: Actor = { principal: "admin", actorId: "admin" };

describe.each(ENGINES)("tenant store on %s", (engine) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(engine);
  });
  afterAll(() => t.close());

  const auditFor = (id: string) =>
    t.db.query<{ action: string; actor_id: string; metadata: Record<string, unknown> }>(
      "SELECT action, actor_id, metadata FROM audit_events WHERE tenant_id = $1 ORDER BY id",
      [id],
    );

  it("creates with defaults and writes tenant.created in the same transaction", async () => {
    const slug = uniqueSlug();
    const tenant = await t.db.tx((q) => createTenant(q, { slug, name: "  Padded Name  " }, actor));
    expect(tenant).toMatchObject({ slug, name: "Padded Name", plan: "starter", kind: "customer", status: "pending" });
    expect(await tenantFindBySlug(t.db, slug)).toEqual(tenant);
    expect((await auditFor(tenant.id)).map((e) => e.action)).toEqual(["tenant.created"]);
  });

  it("a taken slug is a conflict, and nothing of the failed create remains", async () => {
    const slug = uniqueSlug();
    await t.db.tx((q) => createTenant(q, { slug, name: "A" }, actor));
    const err = await t.db.tx((q) => createTenant(q, { slug, name: "B" }, actor)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe("conflict");
    const rows = await t.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM audit_events WHERE action = 'tenant.created' AND metadata->>'slug' = $1",
      [slug],
    );
    expect(rows[0]?.n).toBe(1);
  });

  it("a rolled-back transaction leaves neither the change nor its audit row", async () => {
    const slug = uniqueSlug();
    await expect(
      t.db.tx(async (q) => {
        await createTenant(q, { slug, name: "Doomed" }, actor);
        throw new Error("boom");
      }),
    ).rejects.toThrow();
    expect(await tenantFindBySlug(t.db, slug)).toBeNull();
    const rows = await t.db.query("SELECT 1 FROM audit_events WHERE metadata->>'slug' = $1", [slug]);
    expect(rows).toHaveLength(0);
  });

  it("translates NUL bytes and bad uuids into invalid_input, never internal", async () => {
    const err = await t.db.query("SELECT * FROM tenants WHERE id = $1", ["not-a-uuid"]).catch((e: unknown) => e);
    expect((err as AppError).code).toBe("invalid_input");
    const nul = await t.db.tx((q) => createTenant(q, { slug: uniqueSlug(), name: "a\u0000b" }, actor)).catch((e: unknown) => e);
    expect((nul as AppError).code).toBe("invalid_input");
  });

  it("updates only what changed, records from/to, and is a no-op otherwise", async () => {
    const tenant = await t.db.tx((q) => createTenant(q, { slug: uniqueSlug(), name: "U" }, actor));
    const first = await t.db.tx((q) => updateTenant(q, tenant.id, { plan: "growth", sales_owner: "sam" }, actor));
    expect(first.changed).toBe(true);
    expect(first.value).toMatchObject({ plan: "growth", sales_owner: "sam" });
    const again = await t.db.tx((q) => updateTenant(q, tenant.id, { plan: "growth" }, actor));
    expect(again.changed).toBe(false);
    const events = await auditFor(tenant.id);
    expect(events.map((e) => e.action)).toEqual(["tenant.created", "tenant.updated"]);
    expect(events[1]?.metadata).toEqual({ changes: { plan: { from: "starter", to: "growth" }, sales_owner: { from: null, to: "sam" } } });
  });

  it("rejects contract_end before contract_start, also against the stored value", async () => {
    const tenant = await t.db.tx((q) => createTenant(q, { slug: uniqueSlug(), name: "C" }, actor));
    await t.db.tx((q) => updateTenant(q, tenant.id, { contract_start: "2026-01-01T00:00:00Z" }, actor));
    const err = await t.db.tx((q) => updateTenant(q, tenant.id, { contract_end: "2025-12-31T00:00:00Z" }, actor)).catch((e: unknown) => e);
    expect((err as AppError).code).toBe("invalid_input");
  });

  it("moves pending -> active -> cancelled, idempotently, with one event per change", async () => {
    const tenant = await t.db.tx((q) => createTenant(q, { slug: uniqueSlug(), name: "L" }, actor));
    expect((await t.db.tx((q) => activateTenant(q, tenant.id, actor))).changed).toBe(true);
    expect((await t.db.tx((q) => activateTenant(q, tenant.id, actor))).changed).toBe(false);
    expect((await t.db.tx((q) => cancelTenant(q, tenant.id, actor))).value.status).toBe("cancelled");
    expect((await t.db.tx((q) => cancelTenant(q, tenant.id, actor))).changed).toBe(false);
    const err = await t.db.tx((q) => activateTenant(q, tenant.id, actor)).catch((e: unknown) => e);
    expect((err as AppError).code).toBe("conflict");
    expect((await auditFor(tenant.id)).map((e) => e.action)).toEqual(["tenant.created", "tenant.activated", "tenant.cancelled"]);
  });

  it("lists newest first with keyset paging that neither repeats nor skips", async () => {
    const tag = uniqueSlug("page");
    const made: string[] = [];
    for (let i = 0; i < 7; i++) made.push((await t.db.tx((q) => createTenant(q, { slug: `${tag}-${i}`, name: `P ${i}` }, actor))).id);
    const seen: string[] = [];
    let before: { createdAt: string; id: string } | undefined;
    for (;;) {
      const rows = await tenantList(t.db, { q: tag, limit: 3, ...(before ? { before } : {}) });
      seen.push(...rows.map((r) => r.id));
      const last = rows[rows.length - 1];
      if (rows.length < 3 || !last) break;
      before = { createdAt: last.created_at, id: last.id };
    }
    expect(seen).toEqual([...made].reverse());
  });

  it("search escapes LIKE wildcards", async () => {
    const rows = await tenantList(t.db, { q: "%", limit: 5 });
    expect(rows.every((r) => r.name.includes("%") || r.slug.includes("%"))).toBe(true);
  });

  it("migrations are idempotent and safe when run concurrently", async () => {
    const other = await t.connect();
    const results = await Promise.all([migrate(t.db), migrate(other), migrate(t.db)]);
    expect(results.flat()).toEqual([]);
    expect(await tenantFindById(t.db, "00000000-0000-4000-8000-000000000000")).toBeNull();
  });
});
