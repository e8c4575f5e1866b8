import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "../../src/domain/actor.js";
import { syncCatalog } from "../../src/domain/catalog.js";
import { requestProduct, requestTrial, setEntitlement } from "../../src/domain/entitlements.js";
import { activateTenant, cancelTenant, createTenant } from "../../src/domain/tenants.js";
import { sweepExpiredTrials } from "../../src/domain/trials.js";
import type { Db } from "../../src/store/db.js";
import { entitlementFind, entitlementListByTenant } from "../../src/store/entitlements.js";
import { VERIFY_CHANNEL } from "../../src/store/notify.js";
import { uniqueSlug } from "../helpers/app.js";
import { endTrial as endTrialAt } from "../helpers/catalog.js";
import { ENGINES, openTestDb, type TestDb } from "../helpers/db.js";

const actor: Actor = { principal: "products", actorId: "products" };

describe.each(ENGINES)("entitlements and trials on %s", (engine) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(engine);
    await t.db.tx((q) =>
      syncCatalog(q, [
        { key: "tryable", name: "Tryable", trial_days: 14 },
        { key: "other", name: "Other", trial_days: 7 },
        { key: "plain", name: "Plain" },
      ]),
    );
  });
  afterAll(() => t.close());

  const tenant = async () => (await t.db.tx((q) => createTenant(q, { slug: uniqueSlug(), name: "E" }, actor))).id;
  const trial = (db: Db, id: string, product = "tryable") => db.tx((q) => requestTrial(q, { tenant_id: id, product }, actor));
  const endTrial = (id: string, product = "tryable", seconds = 60) => endTrialAt(t.db, id, product, seconds);
  const events = (id: string, action?: string) =>
    t.db.query<{ action: string; product: string; actor_id: string; metadata: Record<string, unknown>; occurred_at: Date }>(
      `SELECT action, product, actor_id, metadata, occurred_at FROM audit_events
        WHERE tenant_id = $1 AND action LIKE 'entitlement.%' AND ($2::text IS NULL OR action = $2) ORDER BY id`,
      [id, action ?? null],
    );
  const stored = async (id: string, product = "tryable") =>
    (await t.db.query<{ status: string }>("SELECT status FROM entitlements WHERE tenant_id = $1 AND product = $2", [id, product]))[0]
      ?.status;

  describe("trials", () => {
    it("a trial lasts trial_days, shown and stored to the millisecond", async () => {
      const id = await tenant();
      const out = await trial(t.db, id);
      expect(out).toMatchObject({ changed: true, value: { status: "trial" } });
      const { trial_ends_at, created_at } = out.value;
      expect(Date.parse(trial_ends_at as string) - Date.parse(created_at)).toBe(14 * 86_400_000);
      const rows = await t.db.query<{ ok: boolean }>(
        "SELECT trial_ends_at = $2::timestamptz AS ok FROM entitlements WHERE tenant_id = $1",
        [id, trial_ends_at],
      );
      expect(rows[0]?.ok).toBe(true);
    });

    it("an ended trial reads as expired at once, before any sweep, and reads the same after it", async () => {
      const id = await tenant();
      await trial(t.db, id);
      await endTrial(id);
      const before = await entitlementListByTenant(t.db, id);
      expect(before[0]).toMatchObject({ status: "expired" });
      expect(before[0]?.updated_at).toBe(before[0]?.trial_ends_at);
      expect(await stored(id)).toBe("trial");
      expect(await events(id, "entitlement.trial_expired")).toEqual([]);

      await sweepExpiredTrials(t.db);
      expect(await stored(id)).toBe("expired");
      expect(await entitlementListByTenant(t.db, id)).toEqual(before);
      const expired = await events(id, "entitlement.trial_expired");
      expect(expired).toHaveLength(1);
      expect(expired[0]).toMatchObject({ product: "tryable", actor_id: "system", metadata: { from: "trial" } });
      expect(expired[0]?.occurred_at.toISOString()).toBe(before[0]?.trial_ends_at);
    });

    it("the sweep writes trial_expired once per trial however often it runs, and leaves running trials alone", async () => {
      const ended = await tenant();
      const running = await tenant();
      await trial(t.db, ended);
      await trial(t.db, ended, "other");
      await trial(t.db, running);
      await endTrial(ended);
      await endTrial(ended, "other");
      await sweepExpiredTrials(t.db);
      await sweepExpiredTrials(t.db);
      expect((await events(ended, "entitlement.trial_expired")).map((e) => e.product).sort()).toEqual(["other", "tryable"]);
      expect(await events(running, "entitlement.trial_expired")).toEqual([]);
      expect(await stored(running)).toBe("trial");
    });

    it("several sweepers at once, on two store clients: each trial expires exactly once", async () => {
      const other = await t.connect();
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const id = await tenant();
        await trial(t.db, id);
        await endTrial(id);
        ids.push(id);
      }
      const counts = await Promise.all([
        sweepExpiredTrials(t.db, { batch: 3 }),
        sweepExpiredTrials(other, { batch: 3 }),
        sweepExpiredTrials(t.db, { batch: 5 }),
        sweepExpiredTrials(other, { batch: 2 }),
      ]);
      // Sweeps also catch trials ended by other tests in this file; ours are 12 of them.
      expect(counts.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(12);
      const rows = await t.db.query<{ tenant_id: string; n: number }>(
        `SELECT tenant_id, count(*)::int AS n FROM audit_events
          WHERE action = 'entitlement.trial_expired' AND tenant_id = ANY($1::uuid[]) GROUP BY tenant_id`,
        [ids],
      );
      expect(rows).toHaveLength(12);
      expect(rows.every((r) => r.n === 1)).toBe(true);
      for (const id of ids) expect(await stored(id)).toBe("expired");
    });

    it("the sweep racing requests and cancellations on the same tenants: no deadlock, no error, one event per trial", async () => {
      const other = await t.connect();
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) {
        const id = await tenant();
        await trial(t.db, id);
        await endTrial(id);
        ids.push(id);
      }
      const work = ids.flatMap((id, i) => [
        i % 2
          ? other.tx((q) => cancelTenant(q, id, actor))
          : other.tx((q) => requestProduct(q, { tenant_id: id, product: "tryable" }, actor)),
        t.db.tx((q) => requestTrial(q, { tenant_id: id, product: "other" }, actor)).catch((e: unknown) => e),
      ]);
      const results = await Promise.allSettled([sweepExpiredTrials(t.db, { batch: 2 }), ...work, sweepExpiredTrials(other, { batch: 2 })]);
      for (const r of results) expect(r.status).toBe("fulfilled");
      for (const id of ids) {
        expect(await events(id, "entitlement.trial_expired")).toHaveLength(1);
        expect(["expired", "requested"]).toContain(await stored(id));
      }
    });

    it("one trial per product ever: not after it expired, not after it was revoked", async () => {
      const a = await tenant();
      await trial(t.db, a);
      await endTrial(a);
      const again = await trial(t.db, a).catch((e: unknown) => e);
      expect(again).toMatchObject({ code: "conflict", detail: expect.stringMatching(/already had a trial/) });

      const b = await tenant();
      await trial(t.db, b);
      await t.db.tx((q) => setEntitlement(q, { tenant_id: b, product: "tryable", status: "cancelled" }, actor));
      expect(await trial(t.db, b).catch((e: unknown) => e)).toMatchObject({ code: "conflict" });
      expect(await entitlementFind(t.db, b, "tryable")).toMatchObject({ status: "cancelled", had_trial: true });
    });

    it("leaving a trial early ends it now: trial_ends_at says when it ended", async () => {
      const id = await tenant();
      const started = (await trial(t.db, id)).value;
      const granted = await t.db.tx((q) => setEntitlement(q, { tenant_id: id, product: "tryable", status: "active" }, actor));
      expect(granted.value.status).toBe("active");
      expect(Date.parse(granted.value.trial_ends_at as string)).toBeLessThan(Date.parse(started.trial_ends_at as string));
      expect(granted.value.trial_ends_at).toBe(granted.value.updated_at);
    });

    it("an operation on a tenant stores its ended trials first, in its own transaction, and a failure rolls that back", async () => {
      const id = await tenant();
      await trial(t.db, id);
      await endTrial(id);
      const failed = await t.db.tx((q) => requestProduct(q, { tenant_id: id, product: "nope" }, actor)).catch((e: unknown) => e);
      expect(failed).toMatchObject({ code: "not_found" });
      expect(await stored(id)).toBe("trial");
      const ok = await t.db.tx((q) => requestProduct(q, { tenant_id: id, product: "tryable" }, actor));
      expect(ok).toMatchObject({ changed: true, value: { status: "requested" } });
      expect((await events(id)).map((e) => [e.action, e.actor_id, e.metadata.from])).toEqual([
        ["entitlement.trial_started", "products", null],
        ["entitlement.trial_expired", "system", "trial"],
        ["entitlement.requested", "products", "expired"],
      ]);
    });
  });

  describe("lifecycle", () => {
    it("activation grants requested entitlements only; cancellation revokes requested, trial and active, not ended trials", async () => {
      const id = await tenant();
      await t.db.tx((q) => requestProduct(q, { tenant_id: id, product: "plain" }, actor));
      await trial(t.db, id);
      await trial(t.db, id, "other");
      await endTrial(id, "other");
      await t.db.tx((q) => activateTenant(q, id, actor));
      expect((await entitlementListByTenant(t.db, id)).map((e) => [e.product, e.status])).toEqual([
        ["other", "expired"],
        ["plain", "active"],
        ["tryable", "trial"],
      ]);
      await t.db.tx((q) => cancelTenant(q, id, actor));
      expect((await entitlementListByTenant(t.db, id)).map((e) => [e.product, e.status])).toEqual([
        ["other", "expired"],
        ["plain", "cancelled"],
        ["tryable", "cancelled"],
      ]);
      const lifecycle = (await events(id)).filter((e) => e.metadata.cause);
      expect(lifecycle.map((e) => [e.action, e.product, e.metadata.from, e.metadata.cause])).toEqual([
        ["entitlement.granted", "plain", "requested", "tenant.activated"],
        ["entitlement.revoked", "plain", "active", "tenant.cancelled"],
        ["entitlement.revoked", "tryable", "trial", "tenant.cancelled"],
      ]);
    });

    it("every entitlement change notifies verify caches with the tenant id, on commit", async () => {
      const id = await tenant();
      const seen: string[] = [];
      const unlisten = await t.db.listen(
        VERIFY_CHANNEL,
        (p) => {
          if (p.includes(id)) seen.push(p);
        },
        () => {},
      );
      try {
        const until = async (n: number) => {
          for (let i = 0; i < 100 && seen.length < n; i++) await new Promise((r) => setTimeout(r, 20));
          return seen.length;
        };
        await trial(t.db, id);
        expect(await until(1)).toBe(1);
        await t.db.tx((q) => setEntitlement(q, { tenant_id: id, product: "plain", status: "active" }, actor));
        expect(await until(2)).toBe(2);
        await endTrial(id);
        await sweepExpiredTrials(t.db);
        expect(await until(3)).toBe(3);
        // Activation moves nothing here, but instances cache the tenant's facts: it notifies too.
        await t.db.tx((q) => activateTenant(q, id, actor));
        expect(await until(4)).toBe(4);
        // Unchanged (already active) and rolled back: no notification.
        await t.db.tx((q) => setEntitlement(q, { tenant_id: id, product: "plain", status: "active" }, actor));
        await t.db
          .tx(async (q) => {
            await requestProduct(q, { tenant_id: id, product: "other" }, actor);
            throw new Error("rolled back");
          })
          .catch(() => {});
        await new Promise((r) => setTimeout(r, 200));
        expect(seen).toHaveLength(4);
        expect(new Set(seen.map((p) => JSON.stringify(JSON.parse(p))))).toEqual(new Set([JSON.stringify({ tenant_id: id })]));
      } finally {
        await unlisten();
      }
    });
  });
});
