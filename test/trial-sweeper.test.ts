import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "../src/domain/actor.js";
import { syncCatalog } from "../src/domain/catalog.js";
import { requestTrial } from "../src/domain/entitlements.js";
import { createTenant } from "../src/domain/tenants.js";
import { startTrialSweeper } from "../src/trial-sweeper.js";
import { uniqueSlug } from "./helpers/app.js";
import { ENGINES, openTestDb, type TestDb } from "./helpers/db.js";

const actor: Actor = { principal: "admin", actorId: "admin" };

describe.each(ENGINES)("the trial sweeper on %s", (engine) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(engine);
    await t.db.tx((q) => syncCatalog(q, [{ key: "tryable", name: "Tryable", trial_days: 3 }]));
  });
  afterAll(() => t.close());

  const endedTrial = async () => {
    const tenant = await t.db.tx((q) => createTenant(q, { slug: uniqueSlug(), name: "S" }, actor));
    await t.db.tx((q) => requestTrial(q, { tenant_id: tenant.id, product: "tryable" }, actor));
    await t.db.query("UPDATE entitlements SET trial_ends_at = now() - interval '1 second' WHERE tenant_id = $1", [tenant.id]);
    return tenant.id;
  };
  const stored = async (id: string) =>
    (await t.db.query<{ status: string }>("SELECT status FROM entitlements WHERE tenant_id = $1", [id]))[0]?.status;
  const waitFor = async (check: () => Promise<boolean>, ms: number) => {
    for (const end = Date.now() + ms; Date.now() < end; ) {
      if (await check()) return true;
      await new Promise((r) => setTimeout(r, 25));
    }
    return check();
  };

  it("sweeps at start and then every interval; stop() waits for a running sweep and ends the timer", async () => {
    const logs: unknown[] = [];
    const log = { info: (o: unknown) => logs.push(o), warn: (o: unknown) => logs.push(o) } as never;
    const first = await endedTrial();
    const sweeper = startTrialSweeper(t.db, log, 1000);
    try {
      expect(await waitFor(async () => (await stored(first)) === "expired", 2000)).toBe(true);
      const second = await endedTrial();
      expect(await waitFor(async () => (await stored(second)) === "expired", 3000)).toBe(true);
      expect(logs).toContainEqual({ expired: 1 });
    } finally {
      await sweeper.stop();
    }
    const third = await endedTrial();
    await new Promise((r) => setTimeout(r, 1500));
    expect(await stored(third)).toBe("trial");
  });

  it("a failed sweep is logged and the next one runs", async () => {
    const warnings: string[] = [];
    const log = { info: () => {}, warn: (_: unknown, msg: string) => warnings.push(msg) } as never;
    let calls = 0;
    const flaky = {
      ...t.db,
      tx: <T>(fn: Parameters<typeof t.db.tx<T>>[0]) => {
        calls++;
        return calls === 1 ? Promise.reject(new Error("database away")) : t.db.tx(fn);
      },
    };
    const id = await endedTrial();
    const sweeper = startTrialSweeper(flaky, log, 1000);
    try {
      expect(await waitFor(async () => (await stored(id)) === "expired", 3000)).toBe(true);
      expect(warnings).toEqual(["trial sweep failed; retrying at the next interval"]);
    } finally {
      await sweeper.stop();
    }
  });
});
