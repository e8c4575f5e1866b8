import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEvent } from "../../src/schemas/audit.js";
import { openTestApp, type TestApp } from "../helpers/app.js";
import { openTestDb, type TestDb } from "../helpers/db.js";

// Two instances on one PostgreSQL database, each with its own pool and its own sequencer, under
// concurrent writers: every event gets exactly one log_index, dense, in id order, never changed.
describe.skipIf(!process.env.TEST_DATABASE_URL)("audit log sequencing with two instances on PostgreSQL", () => {
  let store: TestDb;
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    store = await openTestDb("postgres");
    a = await openTestApp("postgres", store);
    b = await openTestApp("postgres", { ...store, db: await store.connect() });
  }, 120_000);
  afterAll(async () => {
    await a?.app.close();
    await b?.app.close();
    await store?.close();
  });

  const all = async (t: TestApp): Promise<AuditEvent[]> => {
    const out: AuditEvent[] = [];
    let cursor: string | null = null;
    do {
      const res = await t.call("auditor", "GET", `/v1/audit?limit=1000${cursor ? `&cursor=${cursor}` : ""}`);
      const page = res.json() as { events: AuditEvent[]; next_cursor: string | null };
      out.push(...page.events);
      cursor = page.next_cursor;
    } while (cursor);
    return out;
  };

  it("dense indexes in id order, each event once, never changed, while both append and sequence", async () => {
    const seen = new Map<string, number>();
    const remember = (events: AuditEvent[]) => {
      for (const e of events) {
        if (e.log_index === null) continue;
        const before = seen.get(e.id);
        if (before !== undefined) expect(e.log_index, `event ${e.id}`).toBe(before);
        seen.set(e.id, e.log_index);
      }
    };
    const until = Date.now() + 4000;
    const writer = async (t: TestApp, w: number) => {
      for (let n = 0; Date.now() < until; n++) {
        const res =
          n % 3 === 0
            ? await t.call("service", "POST", "/v1/audit/batch", {
                events: Array.from({ length: 20 }, (_, i) => ({ action: "two.instances", target_id: `${w}-${n}-${i}` })),
              })
            : await t.call("service", "POST", "/v1/audit", { action: "two.instances", target_id: `${w}-${n}` });
        expect(res.statusCode).toBe(201);
      }
    };
    const reader = async () => {
      while (Date.now() < until) remember(await all(a));
    };
    await Promise.all([writer(a, 0), writer(a, 1), writer(a, 2), writer(b, 3), writer(b, 4), writer(b, 5), reader()]);

    let events: AuditEvent[] = [];
    await expect
      .poll(
        async () => {
          events = await all(b);
          return events.every((e) => e.log_index !== null);
        },
        { timeout: 20_000, interval: 200 },
      )
      .toBe(true);
    remember(events);
    expect(events.length).toBeGreaterThan(100);
    expect(events.map((e) => e.log_index)).toEqual(events.map((_, i) => i));
    const [counts] = await store.db.query<{ entries: string; distinct_ids: string; checkpoint: string }>(
      `SELECT (SELECT coalesce(sum(end_index - start_index), 0)::text FROM audit_log_leaves) AS entries,
              (SELECT count(DISTINCT id)::text FROM audit_log_leaves, LATERAL generate_series(0, octet_length(event_ids) / 8 - 1) AS k,
                      LATERAL (SELECT ('x' || encode(substring(event_ids FROM k * 8 + 1 FOR 8), 'hex'))::bit(64)::bigint AS id) AS x) AS distinct_ids,
              (SELECT max(size)::text FROM audit_log_checkpoints) AS checkpoint`,
    );
    expect(counts).toEqual({ entries: String(events.length), distinct_ids: String(events.length), checkpoint: String(events.length) });
  }, 120_000);
});
