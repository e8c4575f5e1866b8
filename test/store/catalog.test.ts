import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "../../src/domain/actor.js";
import { syncCatalog } from "../../src/domain/catalog.js";
import { requestProduct } from "../../src/domain/entitlements.js";
import { createTenant } from "../../src/domain/tenants.js";
import type { CatalogFileProduct } from "../../src/schemas/catalog.js";
import type { Db } from "../../src/store/db.js";
import { entitlementListByTenant } from "../../src/store/entitlements.js";
import { productFind, productListCurrent } from "../../src/store/products.js";
import { uniqueSlug } from "../helpers/app.js";
import { ENGINES, openTestDb, type TestDb } from "../helpers/db.js";

const actor: Actor = { principal: "admin", actorId: "admin" };
const sync = (db: Db, products: CatalogFileProduct[]) => db.tx((q) => syncCatalog(q, products));
const synced = (db: Db) =>
  db.query<{ metadata: Record<string, string[]> }>("SELECT metadata FROM audit_events WHERE action = 'catalog.synced' ORDER BY id");

describe.each(ENGINES)("catalog sync on %s", (engine) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await openTestDb(engine);
  });
  afterAll(() => t.close());

  it("adds, updates, retires and restores products, with one catalog.synced event per effective sync", async () => {
    const first = await sync(t.db, [
      { key: "alpha", name: "Alpha", trial_days: 14 },
      { key: "beta", name: " Beta ", description: "B" },
      { key: "gamma", name: "Gamma", trial_days: null },
    ]);
    expect(first).toEqual({ added: ["alpha", "beta", "gamma"], updated: [], restored: [], retired: [] });
    expect(await productListCurrent(t.db)).toEqual([
      { key: "alpha", name: "Alpha", description: "", trial_days: 14, retired: false },
      { key: "beta", name: "Beta", description: "B", trial_days: null, retired: false },
      { key: "gamma", name: "Gamma", description: "", trial_days: null, retired: false },
    ]);

    const second = await sync(t.db, [
      { key: "alpha", name: "Alpha", trial_days: 30 },
      { key: "beta", name: "Beta", description: "B" },
    ]);
    expect(second).toEqual({ added: [], updated: ["alpha"], restored: [], retired: ["gamma"] });
    expect((await productListCurrent(t.db)).map((p) => [p.key, p.trial_days])).toEqual([
      ["alpha", 30],
      ["beta", null],
    ]);
    expect(await productFind(t.db, "gamma")).toMatchObject({ key: "gamma", retired: true });

    const third = await sync(t.db, [
      { key: "alpha", name: "Alpha", trial_days: 30 },
      { key: "beta", name: "Beta", description: "B" },
      { key: "gamma", name: "Gamma II" },
    ]);
    expect(third).toEqual({ added: [], updated: [], restored: ["gamma"], retired: [] });
    expect(await productFind(t.db, "gamma")).toMatchObject({ name: "Gamma II", retired: false });

    const unchanged = await sync(t.db, [
      { key: "alpha", name: "Alpha", trial_days: 30 },
      { key: "beta", name: "Beta", description: "B" },
      { key: "gamma", name: "Gamma II" },
    ]);
    expect(unchanged).toEqual({ added: [], updated: [], restored: [], retired: [] });
    expect((await synced(t.db)).map((e) => e.metadata)).toEqual([first, second, third]);
  });

  it("a retired product is kept for the entitlements that name it", async () => {
    await sync(t.db, [
      { key: "keeper", name: "Keeper" },
      { key: "leaver", name: "Leaver" },
    ]);
    const tenant = await t.db.tx((q) => createTenant(q, { slug: uniqueSlug(), name: "R" }, actor));
    await t.db.tx((q) => requestProduct(q, { tenant_id: tenant.id, product: "leaver" }, actor));
    await sync(t.db, [{ key: "keeper", name: "Keeper" }]);
    expect((await productListCurrent(t.db)).map((p) => p.key)).toEqual(["keeper"]);
    expect((await entitlementListByTenant(t.db, tenant.id)).map((e) => [e.product, e.status])).toEqual([["leaver", "requested"]]);
  });

  it("instances starting at once: concurrent syncs of one file never fail and apply it once", async () => {
    const other = await t.connect();
    const file: CatalogFileProduct[] = [
      { key: "race-a", name: "A", trial_days: 7 },
      { key: "race-b", name: "B" },
    ];
    const before = (await synced(t.db)).length;
    const results = await Promise.all([sync(t.db, file), sync(other, file), sync(t.db, file), sync(other, file)]);
    const added = results.flatMap((r) => r.added);
    expect(added.sort()).toEqual(["race-a", "race-b"]);
    expect(results.filter((r) => r.retired.length > 0)).toHaveLength(1);
    expect((await synced(t.db)).length).toBe(before + 1);
    expect((await productListCurrent(t.db)).map((p) => p.key)).toEqual(["race-a", "race-b"]);
  });

  it("a failed sync changes nothing", async () => {
    const before = await productListCurrent(t.db);
    await expect(
      t.db.tx(async (q) => {
        await syncCatalog(q, [{ key: "doomed", name: "Doomed" }]);
        throw new Error("boom");
      }),
    ).rejects.toThrow();
    expect(await productListCurrent(t.db)).toEqual(before);
    expect(await productFind(t.db, "doomed")).toBeNull();
  });
});
