import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { endTrial, TEST_PRODUCTS, useCatalog } from "../helpers/catalog.js";
import { ENGINES } from "../helpers/db.js";

const DAY = 86_400_000;
const SOME_ID = "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10";

describe.each(ENGINES)("catalog API on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
    await useCatalog(t.store.db);
  });
  afterAll(() => t.close());

  const tenant = async () => {
    const res = await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Catalog" });
    expect(res.statusCode).toBe(201);
    return res.json().id as string;
  };
  const request = (tenant_id: string, product: string, headers?: Record<string, string>) =>
    t.call("service", "POST", "/v1/catalog/request", { tenant_id, product }, headers);
  const trial = (tenant_id: string, product = "tryable") => t.call("service", "POST", "/v1/catalog/trial-request", { tenant_id, product });
  const entitlements = async (tenant_id: string) =>
    (await t.call("auditor", "GET", `/v1/entitlements?tenant_id=${tenant_id}`)).json().entitlements;
  const audit = (id: string) =>
    t.store.db.query<{
      action: string;
      product: string;
      actor_id: string;
      target_type: string;
      target_id: string;
      metadata: Record<string, unknown>;
    }>(
      "SELECT action, product, actor_id, target_type, target_id, metadata FROM audit_events WHERE tenant_id = $1 AND action LIKE 'entitlement.%' ORDER BY id",
      [id],
    );

  describe("happy", () => {
    it("lists the products on sale, by key, for every role", async () => {
      for (const role of ["admin", "service", "auditor"] as const) {
        const res = await t.call(role, "GET", "/v1/catalog");
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({
          products: [
            { key: "plain", name: "Plain", description: "No trial.", trial_days: null },
            { key: "second", name: "Second", description: "", trial_days: 30 },
            { key: "tryable", name: "Tryable", description: "Has a 14-day trial.", trial_days: 14 },
          ],
        });
      }
    });

    it("request: 201 requested with its audit event; a repeat is 200 and writes nothing", async () => {
      const id = await tenant();
      const res = await request(id, "plain", { "x-actor-id": "rep@example.com" });
      expect(res.statusCode).toBe(201);
      const body = res.json();
      expect(body).toEqual({
        tenant_id: id,
        product: "plain",
        status: "requested",
        trial_ends_at: null,
        created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        updated_at: body.created_at,
      });
      const again = await request(id, "plain");
      expect([again.statusCode, again.json()]).toEqual([200, body]);
      expect(await audit(id)).toEqual([
        {
          action: "entitlement.requested",
          product: "plain",
          actor_id: "rep@example.com",
          target_type: "entitlement",
          target_id: "plain",
          metadata: { from: null, principal: "products" },
        },
      ]);
      expect(await entitlements(id)).toEqual([body]);
    });

    it("request leaves a trial or an active entitlement as it is (200), and re-requests a revoked one (201)", async () => {
      const id = await tenant();
      expect((await trial(id)).statusCode).toBe(201);
      const onTrial = await request(id, "tryable");
      expect([onTrial.statusCode, onTrial.json().status]).toEqual([200, "trial"]);
      await t.call("admin", "POST", "/v1/entitlements", { tenant_id: id, product: "plain", status: "active" });
      const onActive = await request(id, "plain");
      expect([onActive.statusCode, onActive.json().status]).toEqual([200, "active"]);
      await t.call("admin", "POST", "/v1/entitlements", { tenant_id: id, product: "plain", status: "cancelled" });
      const again = await request(id, "plain");
      expect([again.statusCode, again.json().status]).toEqual([201, "requested"]);
      expect((await audit(id)).map((e) => [e.action, e.product, e.metadata.from])).toEqual([
        ["entitlement.trial_started", "tryable", null],
        ["entitlement.granted", "plain", null],
        ["entitlement.revoked", "plain", "active"],
        ["entitlement.requested", "plain", "cancelled"],
      ]);
    });

    it("trial-request: 201 trial ending trial_days from now; 200 while it runs; also from requested", async () => {
      const id = await tenant();
      const res = await trial(id);
      expect(res.statusCode).toBe(201);
      const body = res.json();
      expect(body).toMatchObject({ tenant_id: id, product: "tryable", status: "trial" });
      expect(Date.parse(body.trial_ends_at) - Date.parse(body.created_at)).toBe(14 * DAY);
      expect(Math.abs(Date.parse(body.created_at) - Date.now())).toBeLessThan(60_000);
      const again = await trial(id);
      expect([again.statusCode, again.json()]).toEqual([200, body]);

      await request(id, "second");
      const fromRequested = await trial(id, "second");
      expect([fromRequested.statusCode, fromRequested.json().status]).toEqual([201, "trial"]);
      expect((await audit(id)).map((e) => [e.action, e.product, e.metadata])).toEqual([
        ["entitlement.trial_started", "tryable", { from: null, trial_days: 14, trial_ends_at: body.trial_ends_at }],
        ["entitlement.requested", "second", { from: null }],
        ["entitlement.trial_started", "second", { from: "requested", trial_days: 30, trial_ends_at: expect.any(String) }],
      ]);
    });

    it("an ended trial reads as expired at once, and may be requested again (201) but not tried again (409)", async () => {
      const id = await tenant();
      await trial(id);
      await endTrial(t.store.db, id, "tryable");
      const [e] = await entitlements(id);
      expect(e).toMatchObject({ status: "expired", updated_at: e.trial_ends_at });
      expect(Date.parse(e.trial_ends_at)).toBeLessThan(Date.now());
      const again = await trial(id);
      expect([again.statusCode, again.json().detail]).toEqual([
        409,
        "the tenant already had a trial of tryable; a tenant gets one trial per product",
      ]);
      const req = await request(id, "tryable");
      expect([req.statusCode, req.json().status]).toEqual([201, "requested"]);
      expect((await audit(id)).map((x) => [x.action, x.actor_id])).toEqual([
        ["entitlement.trial_started", "products"],
        ["entitlement.trial_expired", "system"],
        ["entitlement.requested", "products"],
      ]);
    });
  });

  describe("error", () => {
    it("404 for an unknown tenant or product, 409 for a cancelled tenant, and nothing changes", async () => {
      const id = await tenant();
      for (const call of [request, trial]) {
        const unknownTenant = await call(randomUUID(), "tryable");
        expect([unknownTenant.statusCode, unknownTenant.json().detail]).toEqual([404, "tenant not found"]);
        const unknownProduct = await call(id, "no-such-product");
        expect([unknownProduct.statusCode, unknownProduct.json().detail]).toEqual([404, "product not found"]);
      }
      await t.call("admin", "POST", `/v1/tenants/${id}/cancel`);
      for (const call of [request, trial]) {
        const cancelled = await call(id, "tryable");
        expect(cancelled.statusCode).toBe(409);
        expect(cancelled.json()).toMatchObject({ code: "conflict", detail: "the tenant is cancelled" });
      }
      expect(await entitlements(id)).toEqual([]);
      expect(await audit(id)).toEqual([]);
    });

    it("trial-request 409: product without a trial, active entitlement, a second trial after a revoke", async () => {
      const id = await tenant();
      const noTrial = await trial(id, "plain");
      expect([noTrial.statusCode, noTrial.json().detail]).toEqual([409, "product plain offers no trial"]);
      await t.call("admin", "POST", "/v1/entitlements", { tenant_id: id, product: "second", status: "active" });
      const active = await trial(id, "second");
      expect([active.statusCode, active.json().detail]).toEqual([409, "the tenant already has product second"]);
      await trial(id);
      await t.call("admin", "POST", "/v1/entitlements", { tenant_id: id, product: "tryable", status: "cancelled" });
      expect((await trial(id)).statusCode).toBe(409);
      expect((await entitlements(id)).map((e: { product: string; status: string }) => [e.product, e.status])).toEqual([
        ["second", "active"],
        ["tryable", "cancelled"],
      ]);
    });

    it("a retired product is hidden and cannot be requested, and its entitlements stay", async () => {
      await useCatalog(t.store.db, [...TEST_PRODUCTS, { key: "legacy", name: "Legacy", trial_days: 5 }]);
      const id = await tenant();
      expect((await request(id, "legacy")).statusCode).toBe(201);
      await useCatalog(t.store.db);
      const keys = (await t.call("service", "GET", "/v1/catalog")).json().products.map((p: { key: string }) => p.key);
      expect(keys).not.toContain("legacy");
      expect((await request(id, "legacy")).statusCode).toBe(404);
      expect((await trial(id, "legacy")).statusCode).toBe(404);
      expect((await entitlements(id)).map((e: { product: string; status: string }) => [e.product, e.status])).toEqual([
        ["legacy", "requested"],
      ]);
    });

    it.each([
      [undefined, "body"],
      [{}, "body/tenant_id"],
      [{ tenant_id: "not-a-uuid", product: "tryable" }, "body/tenant_id"],
      [{ tenant_id: SOME_ID }, "body/product"],
      [{ tenant_id: SOME_ID, product: "Tryable" }, "body/product"],
      [{ tenant_id: SOME_ID, product: "x" }, "body/product"],
      [{ tenant_id: SOME_ID, product: 7 }, "body/product"],
      [{ tenant_id: SOME_ID, product: "tryable", status: "trial" }, "body/status"],
    ])("400 for body %j naming %s", async (body, field) => {
      for (const url of ["/v1/catalog/request", "/v1/catalog/trial-request"]) {
        const res = await t.call("service", "POST", url, body);
        expect(res.statusCode, url).toBe(400);
        expect(res.json().code).toBe("invalid_input");
        if (body !== undefined) expect(res.json().errors.map((e: { field: string }) => e.field)).toContain(field);
      }
    });

    it("400 for query parameters on the catalog", async () => {
      expect((await t.call("admin", "GET", "/v1/catalog?all=true")).statusCode).toBe(400);
    });
  });

  describe("concurrency", () => {
    it("racing trial-requests: one 201, the rest 200, one row, one trial_started", async () => {
      const id = await tenant();
      const results = await Promise.all(Array.from({ length: 10 }, () => trial(id)));
      expect(results.map((r) => r.statusCode).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
      expect(new Set(results.map((r) => r.json().trial_ends_at)).size).toBe(1);
      expect(await entitlements(id)).toHaveLength(1);
      expect((await audit(id)).map((e) => e.action)).toEqual(["entitlement.trial_started"]);
    });

    it("racing request, trial-request and grant on one tenant and product: no 5xx, one row, at most one trial", async () => {
      const id = await tenant();
      const calls = Array.from({ length: 12 }, (_, i) =>
        i % 3 === 0
          ? request(id, "tryable")
          : i % 3 === 1
            ? trial(id)
            : t.call("admin", "POST", "/v1/entitlements", { tenant_id: id, product: "tryable", status: "active" }),
      );
      const results = await Promise.all(calls);
      for (const r of results) expect([200, 201, 409]).toContain(r.statusCode);
      expect(results.filter((r) => r.statusCode === 201).length).toBeGreaterThanOrEqual(1);
      const rows = await entitlements(id);
      expect(rows).toHaveLength(1);
      expect(rows[0].status).toBe("active");
      const actions = (await audit(id)).map((e) => e.action);
      expect(actions.filter((a) => a === "entitlement.trial_started").length).toBeLessThanOrEqual(1);
      expect(actions.filter((a) => a === "entitlement.granted")).toHaveLength(1);
    });

    it("racing trial-requests and a tenant cancellation: no 5xx, and no trial outlives the cancellation", async () => {
      const id = await tenant();
      const results = await Promise.all([
        trial(id),
        trial(id, "second"),
        t.call("admin", "POST", `/v1/tenants/${id}/cancel`),
        request(id, "plain"),
        trial(id),
      ]);
      for (const r of results) expect([200, 201, 409]).toContain(r.statusCode);
      for (const e of await entitlements(id)) expect(e.status).toBe("cancelled");
    });
  });
});
