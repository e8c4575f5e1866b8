import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "../../src/domain/actor.js";
import { AppError } from "../../src/domain/errors.js";
import { createTenant } from "../../src/domain/tenants.js";
import { auditInsert, auditList } from "../../src/store/audit.js";
import type { Queryable } from "../../src/store/db.js";
import { uniqueSlug } from "../helpers/app.js";
import { ENGINES, openTestDb, type TestDb } from "../helpers/db.js";

const actor: Actor = { principal: "admin", actorId: "admin" };

describe.each(ENGINES)("audit store on %s", (engine) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(engine);
  });
  afterAll(() => t.close());

  const horizon = async (q: Queryable) => BigInt((await q.query<{ h: string }>("SELECT audit_horizon()::text AS h"))[0]?.h ?? "0");
  const failure = (p: Promise<unknown>) => p.then(() => null).catch((e: unknown) => e as AppError);

  it("on an empty log the horizon is 1 and a list is empty", async () => {
    expect(await horizon(t.db)).toBe(1n);
    expect(await auditList(t.db, { limit: 10 })).toEqual([]);
  });

  it("any INSERT, not only auditInsert, gets a server id and created_at and holds the horizon until it commits", async () => {
    const inside = await t.db.tx(async (q) => {
      const [row] = await q.query<{ id: string; created_at: Date; occurred_at: Date }>(
        `INSERT INTO audit_events (id, actor_id, action, created_at) VALUES (424242, 'raw', 'raw.insert', '2001-01-01T00:00:00Z')
         RETURNING id::text AS id, created_at, occurred_at`,
      );
      return { row, h: await horizon(q) };
    });
    expect(inside.row?.id).not.toBe("424242");
    expect(Math.abs((inside.row?.created_at.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
    expect(inside.row?.occurred_at).toEqual(inside.row?.created_at);
    expect(inside.h).toBeLessThanOrEqual(BigInt(inside.row?.id ?? 0));
    expect(await horizon(t.db)).toBeGreaterThan(BigInt(inside.row?.id ?? 0));
  });

  it("a savepoint rolled back gives up its fence, and the next insert in the transaction takes it again", async () => {
    const seen = await t.db.tx(async (q) => {
      await q.query("SAVEPOINT first");
      await auditInsert(q, [{ actor_id: "a", action: "savepoint.row" }]);
      await q.query("ROLLBACK TO SAVEPOINT first");
      const [e] = await auditInsert(q, [{ actor_id: "a", action: "savepoint.row" }]);
      return { id: BigInt(e?.id ?? 0), h: await horizon(q) };
    });
    expect(seen.h).toBeLessThanOrEqual(seen.id);
    expect(await horizon(t.db)).toBeGreaterThan(seen.id);
  });

  it("events are append-only: no update, delete or truncate", async () => {
    const [e] = await auditInsert(t.db, [{ actor_id: "a", action: "keep.me" }]);
    const attempts = [
      "UPDATE audit_events SET action = 'changed' WHERE id = $1",
      "UPDATE audit_events SET metadata = '{\"x\":1}' WHERE id = $1",
      "DELETE FROM audit_events WHERE id = $1",
      "TRUNCATE audit_events",
    ];
    for (const sql of attempts) {
      const err = await failure(t.db.query(sql, sql.includes("$1") ? [e?.id] : []));
      expect(err, sql).toBeInstanceOf(AppError);
    }
    expect((await auditList(t.db, { action: "keep.me", limit: 10 })).map((x) => x.id)).toEqual([e?.id]);
  });

  it("events outlive their tenant: deleting a tenant sets tenant_id to null", async () => {
    const tenant = await t.db.tx((q) => createTenant(q, { slug: uniqueSlug(), name: "Gone" }, actor));
    await auditInsert(t.db, [{ actor_id: "a", action: "before.delete", tenant_id: tenant.id }]);
    await t.db.query("DELETE FROM tenants WHERE id = $1", [tenant.id]);
    const rows = await t.db.query<{ tenant_id: string | null; action: string }>(
      "SELECT tenant_id, action FROM audit_events WHERE target_id = $1 OR action = 'before.delete'",
      [tenant.id],
    );
    expect(rows.map((r) => [r.action, r.tenant_id]).sort()).toEqual([
      ["before.delete", null],
      ["tenant.created", null],
    ]);
  });

  it("a batch takes its ids in the order given, and a failed batch leaves only a gap", async () => {
    const made = await auditInsert(
      t.db,
      ["one", "two", "three"].map((target_id) => ({ actor_id: "a", action: "order.row", target_id })),
    );
    expect(made.map((e) => e.target_id)).toEqual(["one", "two", "three"]);
    const err = await failure(
      auditInsert(t.db, [
        { actor_id: "a", action: "order.row", target_id: "four" },
        { actor_id: "a", action: "order.row", tenant_id: "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10" },
      ]),
    );
    expect((err as AppError).code).toBe("not_found");
    const [after] = await auditInsert(t.db, [{ actor_id: "a", action: "order.row", target_id: "five" }]);
    expect((await auditList(t.db, { action: "order.row", limit: 10 })).map((e) => e.target_id)).toEqual(["one", "two", "three", "five"]);
    expect(BigInt(after?.id ?? 0)).toBeGreaterThan(BigInt(made[2]?.id ?? 0) + 1n);
  });
});
