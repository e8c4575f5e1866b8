import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditList } from "../../src/store/audit.js";
import { ENGINES, openTestDb, type TestDb } from "../helpers/db.js";

/**
 * since/until are exact on created_at although auditList narrows the scan
 * with id bounds derived from them. The fixture is a history in id order
 * whose created_at runs backwards by up to 5 s in places (what the
 * assignment trigger allows), so the bounds are tested where they are
 * tightest. Rows are written as a restore would, triggers off.
 */
describe.each(ENGINES)("audit time ranges on %s", (engine) => {
  let t: TestDb;
  const base = Date.now() - 3 * 3600_000;
  // Seconds after `base`, in id order.
  const offsets = [0, 0.001, 10, 9, 12, 13, 600, 598, 603, 3600, 3604.999, 3600, 3700, 3699.5, 7000];
  const times = offsets.map((s) => new Date(base + Math.round(s * 1000)).toISOString());

  beforeAll(async () => {
    t = await openTestDb(engine);
    await t.db.tx(async (q) => {
      await q.query("SET LOCAL session_replication_role = replica");
      for (const at of times) {
        for (const action of ["time.subject", "time.noise"]) {
          await q.query(
            `INSERT INTO audit_events (id, actor_id, action, occurred_at, created_at)
             VALUES (nextval('audit_events_id_seq'), 'fixture', $1, $2, $2)`,
            [action, at],
          );
        }
      }
    });
  });
  afterAll(() => t.close());

  const truth = async (since: string | undefined, until: string | undefined) =>
    (
      await t.db.query<{ id: string }>(
        `SELECT id::text AS id FROM audit_events
          WHERE action = 'time.subject' AND ($1::timestamptz IS NULL OR created_at >= $1) AND ($2::timestamptz IS NULL OR created_at < $2)
          ORDER BY audit_events.id`,
        [since ?? null, until ?? null],
      )
    ).map((r) => r.id);
  const listed = async (since: string | undefined, until: string | undefined, limit = 1000) => {
    const out: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await auditList(t.db, {
        action: "time.subject",
        limit,
        ...(since ? { since } : {}),
        ...(until ? { until } : {}),
        ...(after ? { after } : {}),
      });
      out.push(...page.map((e) => e.id));
      if (page.length < limit) return out;
      after = page[page.length - 1]?.id;
    }
  };

  it("the fixture keeps to the trigger's bound: a lower id is never more than 5 s later", () => {
    for (let i = 0; i < times.length; i++) {
      for (let j = i + 1; j < times.length; j++) {
        expect(Date.parse(times[i] as string) - Date.parse(times[j] as string)).toBeLessThanOrEqual(5000);
      }
    }
  });

  it("since alone and until alone match created_at exactly at every edge", async () => {
    const instants = new Set<string>();
    for (const at of times) {
      for (const d of [-7000, -6000, -5000, -1, 0, 1, 5000, 6000, 7000]) instants.add(new Date(Date.parse(at) + d).toISOString());
    }
    for (const at of instants) {
      expect(await listed(at, undefined), `since ${at}`).toEqual(await truth(at, undefined));
      expect(await listed(undefined, at), `until ${at}`).toEqual(await truth(undefined, at));
    }
  });

  it("since and until together match, also paged two at a time", async () => {
    const edges = [...new Set(times)].flatMap((at) => [-1, 0, 1].map((d) => new Date(Date.parse(at) + d).toISOString()));
    let nonEmpty = 0;
    for (const since of edges) {
      for (const until of edges) {
        if (Date.parse(since) >= Date.parse(until)) continue;
        const expected = await truth(since, until);
        if (expected.length > 0) nonEmpty++;
        expect(await listed(since, until, 2), `${since} .. ${until}`).toEqual(expected);
      }
    }
    expect(nonEmpty).toBeGreaterThan(100);
  });
});
