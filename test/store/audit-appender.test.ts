import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditAppender } from "../../src/domain/audit-appender.js";
import type { AppError } from "../../src/domain/errors.js";
import { createTenant } from "../../src/domain/tenants.js";
import type { Queryable } from "../../src/store/db.js";
import { uniqueSlug } from "../helpers/app.js";
import { ENGINES, openTestDb, type TestDb } from "../helpers/db.js";

/** The real store, counting the INSERTs that reach it. */
function counting(q: Queryable): Queryable & { inserts: number } {
  const c = {
    inserts: 0,
    query: <R extends Record<string, unknown>>(text: string, values?: readonly unknown[]) => {
      if (text.trimStart().startsWith("INSERT INTO audit_events")) c.inserts++;
      return q.query<R>(text, values);
    },
    exec: (sql: string) => q.exec(sql),
  };
  return c;
}

describe.each(ENGINES)("audit appender (group commit) on %s", (engine) => {
  let t: TestDb;
  let tenantId: string;
  beforeAll(async () => {
    t = await openTestDb(engine);
    tenantId = (await t.db.tx((q) => createTenant(q, { slug: uniqueSlug(), name: "Appender" }, { principal: "a", actorId: "a" }))).id;
  });
  afterAll(() => t.close());

  const stored = async (action: string) =>
    (await t.db.query<{ target_id: string }>("SELECT target_id FROM audit_events WHERE action = $1 ORDER BY id", [action])).map(
      (r) => r.target_id,
    );

  it("an append with nothing in flight is inserted at once, alone", async () => {
    const q = counting(t.db);
    const e = await new AuditAppender(q).append({ actor_id: "a", action: "alone.one", target_id: "x" });
    expect([q.inserts, e.target_id, e.action]).toEqual([1, "x", "alone.one"]);
  });

  it("concurrent appends share inserts, and each caller gets its own event back", async () => {
    const q = counting(t.db);
    const appender = new AuditAppender(q);
    const n = 300;
    const events = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        appender.append({ actor_id: `actor-${i}`, action: "shared.row", target_id: String(i), tenant_id: tenantId }),
      ),
    );
    events.forEach((e, i) => {
      expect([e.target_id, e.actor_id]).toEqual([String(i), `actor-${i}`]);
    });
    expect(new Set(events.map((e) => e.id)).size).toBe(n);
    expect(q.inserts).toBeLessThan(n / 10);
    expect((await stored("shared.row")).length).toBe(n);
  });

  it("a refused event fails alone; the events it shared an insert with are stored", async () => {
    const q = counting(t.db);
    const appender = new AuditAppender(q, 1);
    const results = await Promise.allSettled(
      Array.from({ length: 64 }, (_, i) =>
        appender.append({
          actor_id: "a",
          action: "mixed.row",
          target_id: String(i),
          tenant_id: i === 37 ? "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10" : tenantId,
        }),
      ),
    );
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [[i, (r.reason as AppError).code]] : []));
    expect(failed).toEqual([[37, "not_found"]]);
    // Independent requests: stored in any order.
    expect((await stored("mixed.row")).map(Number).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 64 }, (_, i) => i).filter((i) => i !== 37),
    );
    // Halving finds the bad event in a few statements, not one per event.
    expect(q.inserts).toBeLessThan(32);
  });

  it("when the outcome is unknown (the store is gone) every caller fails and nothing is retried", async () => {
    const gone = await openTestDb(engine);
    await gone.close();
    const q = counting(gone.db);
    const appender = new AuditAppender(q, 1);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => appender.append({ actor_id: "a", action: "lost.row" })));
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect(((r as PromiseRejectedResult).reason as AppError).code).toBe("unavailable");
    }
    expect(q.inserts).toBe(2);
  });
});
