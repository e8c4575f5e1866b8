import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditInsert } from "../../src/store/audit.js";
import type { Db } from "../../src/store/db.js";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ENGINES, openTestDb } from "../helpers/db.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rand = (n: number) => Math.floor(Math.random() * n);
class Rollback extends Error {}
/** Store adapters wrap whatever a transaction throws; the cause is ours. */
const isRollback = (e: unknown) => e instanceof Rollback || (e instanceof Error && e.cause instanceof Rollback);

/**
 * On PostgreSQL, audit ids are taken at insert but transactions commit in
 * any order. These tests hold commits open on purpose, on a second pool,
 * while the app reads through its own: the reader must never be handed an
 * id past one that is still to commit.
 */
describe.each(ENGINES)("audit paging never skips on %s", (engine) => {
  let t: TestApp;
  let writers: Db;
  beforeAll(async () => {
    t = await openTestApp(engine);
    writers = await t.store.connect();
  });
  afterAll(() => t.close());

  const newTenant = async () => (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Race" })).json().id as string;
  const horizon = async () => BigInt((await t.store.db.query<{ h: string }>("SELECT audit_horizon()::text AS h"))[0]?.h ?? "0");
  const ids = async (tenantId: string) =>
    (await t.call("auditor", "GET", `/v1/audit?tenant_id=${tenantId}&action=race.event&limit=1000`))
      .json()
      .events.map((e: { id: string }) => e.id);

  it.runIf(engine === "postgres")("the horizon stays at an open writer's id until it ends, though later ids committed", async () => {
    const tenantId = await newTenant();
    const event = { action: "race.event", tenant_id: tenantId, actor_id: "w" };
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let started = () => {};
    const inserted = new Promise<void>((r) => {
      started = r;
    });
    let slowId = "";
    const slow = writers.tx(async (q) => {
      slowId = (await auditInsert(q, [event]))[0]?.id ?? "";
      started();
      await gate;
    });
    await inserted;
    const [fast] = await t.store.db.tx((q) => auditInsert(q, [event]));
    expect(BigInt(fast?.id ?? 0)).toBeGreaterThan(BigInt(slowId));
    expect(await horizon()).toBeLessThanOrEqual(BigInt(slowId));
    expect(await ids(tenantId)).toEqual([]);

    // A writer in another database (another test file, another registry) holds nothing back here.
    const other = await openTestDb("postgres");
    try {
      await other.db.tx(async (q) => {
        await auditInsert(q, [{ action: "elsewhere", actor_id: "w" }]);
        release();
        await slow;
        expect(await ids(tenantId)).toEqual([slowId, fast?.id]);
      });
    } finally {
      await other.close();
    }

    // A rolled-back writer releases the horizon as well.
    let aborted = "";
    await writers
      .tx(async (q) => {
        aborted = (await auditInsert(q, [event]))[0]?.id ?? "";
        expect(await horizon()).toBeLessThanOrEqual(BigInt(aborted));
        throw new Rollback();
      })
      .catch((e: unknown) => {
        if (!isRollback(e)) throw e;
      });
    expect(await horizon()).toBeGreaterThan(BigInt(aborted));
  });

  it("a reader following next_cursor while writers commit out of order sees every committed event exactly once", async () => {
    const tenantId = await newTenant();
    const committed = new Set<string>();
    let polls = 0;
    // Enough interleaving to matter, however slow the machine: writers go on for a while AND until
    // this many events committed and the reader had this many turns (a loaded machine takes longer,
    // it does not prove less).
    const until = Date.now() + (engine === "postgres" ? 4000 : 1500);
    const enoughEvents = engine === "postgres" ? 300 : 50;
    const enoughPolls = engine === "postgres" ? 20 : 3;
    const keepWriting = () => Date.now() < until || committed.size <= enoughEvents || polls <= enoughPolls;

    // Transactions that insert 1-3 events, then hold their commit for up to
    // 30 ms, so later ids often commit first; some roll back (gaps).
    const slowWriter = async (k: number) => {
      while (keepWriting()) {
        const n = 1 + rand(3);
        try {
          const made = await writers.tx(async (q) => {
            const events = await auditInsert(
              q,
              Array.from({ length: n }, () => ({ action: "race.event", tenant_id: tenantId, actor_id: `writer-${k}` })),
            );
            await sleep(rand(30));
            if (Math.random() < 0.15) throw new Rollback();
            return events;
          });
          for (const e of made) committed.add(e.id);
        } catch (e) {
          if (!isRollback(e)) throw e;
        }
      }
    };
    // And fast single appends through the API, committing at once.
    const apiWriter = async () => {
      while (keepWriting()) {
        const res = await t.call("service", "POST", "/v1/audit", { action: "race.event", tenant_id: tenantId });
        expect(res.statusCode).toBe(201);
        committed.add(res.json().id);
      }
    };

    let writing = true;
    const seen = new Set<string>();
    const late: string[] = [];
    const duplicates: string[] = [];
    let highest = 0n;
    let cursor: string | null = null;
    let lastPollWasEnd = false;
    const poll = async (): Promise<{ fresh: number; end: boolean }> => {
      const qs = `tenant_id=${tenantId}&action=race.event&limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const res = await t.call("auditor", "GET", `/v1/audit?${qs}`);
      expect(res.statusCode).toBe(200);
      const body = res.json() as { events: { id: string }[]; next_cursor: string | null };
      polls++;
      // Re-reading the last page after a null next_cursor is expected (SPEC); anything else seen twice is a bug.
      const repoll = lastPollWasEnd;
      let fresh = 0;
      for (const { id } of body.events) {
        if (seen.has(id)) {
          if (!repoll) duplicates.push(id);
          continue;
        }
        // A new id below one already handed out is one a cursor would have stepped over.
        if (BigInt(id) < highest) late.push(id);
        seen.add(id);
        highest = BigInt(id) > highest ? BigInt(id) : highest;
        fresh++;
      }
      if (body.next_cursor) cursor = body.next_cursor;
      lastPollWasEnd = body.next_cursor === null;
      return { fresh, end: body.next_cursor === null };
    };
    const reader = async () => {
      while (writing) {
        const { end } = await poll();
        if (end) await sleep(rand(3));
      }
      // Writers are done: everything is settled, so read to the end.
      for (;;) {
        const { fresh, end } = await poll();
        if (end && fresh === 0) break;
      }
    };

    const writing$ = Promise.all([...Array.from({ length: 6 }, (_, k) => slowWriter(k)), apiWriter()]).finally(() => {
      writing = false;
    });
    await Promise.all([writing$, reader()]);

    expect(late).toEqual([]);
    expect(duplicates).toEqual([]);
    expect(committed.size).toBeGreaterThan(enoughEvents);
    const sorted = (s: Set<string>) => [...s].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    expect(sorted(seen)).toEqual(sorted(committed));
    // PGlite runs one transaction at a time, so there the reader gets fewer turns.
    expect(polls).toBeGreaterThan(enoughPolls);
  });
});
