import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { endTrial, TEST_PRODUCTS, useCatalog } from "../helpers/catalog.js";
import { ENGINES } from "../helpers/db.js";

interface Row {
  product: string;
  status: string;
  trial_ends_at: string | null;
}

describe.each(ENGINES)("entitlements API on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
    await useCatalog(t.store.db);
  });
  afterAll(() => t.close());

  const tenant = async () => {
    const res = await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Entitled" });
    expect(res.statusCode).toBe(201);
    return res.json().id as string;
  };
  const set = (tenant_id: string, product: string, status: string) =>
    t.call("admin", "POST", "/v1/entitlements", { tenant_id, product, status });
  const list = async (id: string): Promise<Row[]> => {
    const res = await t.call("service", "GET", `/v1/entitlements?tenant_id=${id}`);
    expect(res.statusCode).toBe(200);
    return res.json().entitlements;
  };
  const statuses = async (id: string) => (await list(id)).map((e) => [e.product, e.status]);
  const audit = (id: string) =>
    t.store.db.query<{ action: string; product: string | null; actor_id: string; metadata: Record<string, unknown> }>(
      "SELECT action, product, actor_id, metadata FROM audit_events WHERE tenant_id = $1 ORDER BY id",
      [id],
    );

  describe("happy", () => {
    it("lists a tenant's entitlements by product, for every role; none is an empty list", async () => {
      const id = await tenant();
      expect((await t.call("auditor", "GET", `/v1/entitlements?tenant_id=${id}`)).json()).toEqual({ entitlements: [] });
      await set(id, "tryable", "active");
      await t.call("service", "POST", "/v1/catalog/request", { tenant_id: id, product: "plain" });
      for (const role of ["admin", "service", "auditor"] as const) {
        const res = await t.call(role, "GET", `/v1/entitlements?tenant_id=${id}`);
        expect(res.statusCode).toBe(200);
        expect(res.json().entitlements.map((e: Row) => [e.product, e.status])).toEqual([
          ["plain", "requested"],
          ["tryable", "active"],
        ]);
      }
    });

    it("grant: 201 when it creates the row, 200 when it changes it or nothing; revoke: 200; audit only for changes", async () => {
      const id = await tenant();
      const created = await set(id, "plain", "active");
      expect([created.statusCode, created.json().status]).toEqual([201, "active"]);
      expect((await set(id, "plain", "active")).statusCode).toBe(200);
      const revoked = await set(id, "plain", "cancelled");
      expect([revoked.statusCode, revoked.json().status]).toEqual([200, "cancelled"]);
      expect((await set(id, "plain", "cancelled")).statusCode).toBe(200);
      const regranted = await set(id, "plain", "active");
      expect([regranted.statusCode, regranted.json().status]).toEqual([200, "active"]);
      expect(regranted.json().created_at).toBe(created.json().created_at);
      expect((await audit(id)).slice(1).map((e) => [e.action, e.product, e.actor_id, e.metadata])).toEqual([
        ["entitlement.granted", "plain", "admin", { from: null }],
        ["entitlement.revoked", "plain", "admin", { from: "active" }],
        ["entitlement.granted", "plain", "admin", { from: "cancelled" }],
      ]);
    });

    it("granting a trial ends it now; revoking an expired trial leaves it expired", async () => {
      const id = await tenant();
      const started = (await t.call("service", "POST", "/v1/catalog/trial-request", { tenant_id: id, product: "tryable" })).json();
      const granted = (await set(id, "tryable", "active")).json();
      expect(granted.status).toBe("active");
      expect(Date.parse(granted.trial_ends_at)).toBeLessThan(Date.parse(started.trial_ends_at));

      await t.call("service", "POST", "/v1/catalog/trial-request", { tenant_id: id, product: "second" });
      await endTrial(t.store.db, id, "second");
      const revoked = await set(id, "second", "cancelled");
      expect([revoked.statusCode, revoked.json().status]).toEqual([200, "expired"]);
      expect((await audit(id)).filter((e) => e.action === "entitlement.revoked")).toEqual([]);
    });

    it("activation turns requested entitlements active, one entitlement.granted each, and nothing else", async () => {
      const id = await tenant();
      await t.call("service", "POST", "/v1/catalog/request", { tenant_id: id, product: "plain" });
      await t.call("service", "POST", "/v1/catalog/request", { tenant_id: id, product: "second" });
      await t.call("service", "POST", "/v1/catalog/trial-request", { tenant_id: id, product: "tryable" });
      const res = await t.call("admin", "POST", `/v1/tenants/${id}/activate`, undefined, { "x-actor-id": "ops@example.com" });
      expect(res.statusCode).toBe(200);
      expect(await statuses(id)).toEqual([
        ["plain", "active"],
        ["second", "active"],
        ["tryable", "trial"],
      ]);
      await t.call("admin", "POST", `/v1/tenants/${id}/activate`);
      const events = (await audit(id)).filter((e) => e.action === "tenant.activated" || e.metadata.cause);
      expect(events.map((e) => [e.action, e.product, e.actor_id, e.metadata])).toEqual([
        ["tenant.activated", null, "ops@example.com", { from: "pending", principal: "admin" }],
        ["entitlement.granted", "plain", "ops@example.com", { from: "requested", cause: "tenant.activated", principal: "admin" }],
        ["entitlement.granted", "second", "ops@example.com", { from: "requested", cause: "tenant.activated", principal: "admin" }],
      ]);
      // On an active tenant a request waits for a grant.
      await t.call("admin", "POST", "/v1/entitlements", { tenant_id: id, product: "second", status: "cancelled" });
      const later = await t.call("service", "POST", "/v1/catalog/request", { tenant_id: id, product: "second" });
      expect(later.json().status).toBe("requested");
    });

    it("cancellation revokes requested, trial and active entitlements, one entitlement.revoked each; ended trials stay expired", async () => {
      const id = await tenant();
      await t.call("service", "POST", "/v1/catalog/request", { tenant_id: id, product: "plain" });
      await t.call("service", "POST", "/v1/catalog/trial-request", { tenant_id: id, product: "tryable" });
      await t.call("service", "POST", "/v1/catalog/trial-request", { tenant_id: id, product: "second" });
      await endTrial(t.store.db, id, "second");
      expect((await t.call("admin", "POST", `/v1/tenants/${id}/cancel`)).statusCode).toBe(200);
      expect(await statuses(id)).toEqual([
        ["plain", "cancelled"],
        ["second", "expired"],
        ["tryable", "cancelled"],
      ]);
      expect((await t.call("admin", "POST", `/v1/tenants/${id}/cancel`)).statusCode).toBe(200);
      // The repeated cancellation wrote nothing, so these are the last events.
      expect((await audit(id)).slice(-4).map((e) => [e.action, e.product])).toEqual([
        ["tenant.cancelled", null],
        ["entitlement.trial_expired", "second"],
        ["entitlement.revoked", "plain"],
        ["entitlement.revoked", "tryable"],
      ]);
    });
  });

  describe("error", () => {
    it("GET: 400 without tenant_id, with a malformed one or an unknown parameter; 404 for an unknown tenant", async () => {
      for (const qs of ["", "?tenant_id=nope", `?tenant_id=${randomUUID()}&status=active`]) {
        const res = await t.call("admin", "GET", `/v1/entitlements${qs}`);
        expect(res.statusCode, qs).toBe(400);
        expect(res.json().code).toBe("invalid_input");
      }
      const res = await t.call("admin", "GET", `/v1/entitlements?tenant_id=${randomUUID()}`);
      expect([res.statusCode, res.json().detail]).toEqual([404, "tenant not found"]);
    });

    it("POST: 404 unknown tenant, unknown product, revoking a product never had; 409 granting on a cancelled tenant", async () => {
      const id = await tenant();
      expect((await set(randomUUID(), "plain", "active")).json()).toMatchObject({ status: 404, detail: "tenant not found" });
      expect((await set(id, "unknown", "active")).json()).toMatchObject({ status: 404, detail: "product not found" });
      expect((await set(id, "plain", "cancelled")).json()).toMatchObject({ status: 404, detail: "the tenant has no entitlement to plain" });
      await set(id, "plain", "active");
      await t.call("admin", "POST", `/v1/tenants/${id}/cancel`);
      const grant = await set(id, "plain", "active");
      expect(grant.json()).toMatchObject({ status: 409, code: "conflict", detail: "the tenant is cancelled" });
      const revoke = await set(id, "plain", "cancelled");
      expect([revoke.statusCode, revoke.json().status]).toEqual([200, "cancelled"]);
      expect(await statuses(id)).toEqual([["plain", "cancelled"]]);
    });

    it("a retired product cannot be granted but can still be revoked", async () => {
      await useCatalog(t.store.db, [...TEST_PRODUCTS, { key: "sunset", name: "Sunset" }]);
      const id = await tenant();
      await set(id, "sunset", "active");
      await useCatalog(t.store.db);
      await set(id, "sunset", "cancelled");
      expect((await set(id, "sunset", "active")).statusCode).toBe(404);
      expect(await statuses(id)).toEqual([["sunset", "cancelled"]]);
    });

    it.each([
      [{ tenant_id: "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10", product: "plain", status: "trial" }, "body/status"],
      [{ tenant_id: "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10", product: "plain", status: "requested" }, "body/status"],
      [{ tenant_id: "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10", product: "plain" }, "body/status"],
      [{ tenant_id: "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10", product: "plain", status: "active", note: "x" }, "body/note"],
      [{ tenant_id: 1, product: "plain", status: "active" }, "body/tenant_id"],
    ])("POST 400 for %j naming %s", async (body, field) => {
      const res = await t.call("admin", "POST", "/v1/entitlements", body);
      expect(res.statusCode).toBe(400);
      expect(res.json().errors.map((e: { field: string }) => e.field)).toContain(field);
    });
  });

  describe("concurrency", () => {
    it("racing grants: one 201, the rest 200, one row, one entitlement.granted", async () => {
      const id = await tenant();
      const results = await Promise.all(Array.from({ length: 8 }, () => set(id, "plain", "active")));
      expect(results.map((r) => r.statusCode).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
      expect((await audit(id)).filter((e) => e.action === "entitlement.granted")).toHaveLength(1);
    });

    it("racing grants, revokes and activation: no 5xx, and the audit trail replays to the final status", async () => {
      const id = await tenant();
      await t.call("service", "POST", "/v1/catalog/request", { tenant_id: id, product: "plain" });
      const calls = Array.from({ length: 10 }, (_, i) =>
        i === 5 ? t.call("admin", "POST", `/v1/tenants/${id}/activate`) : set(id, "plain", i % 2 ? "cancelled" : "active"),
      );
      for (const r of await Promise.all(calls)) expect([200, 201]).toContain(r.statusCode);
      const events = (await audit(id)).filter((e) => e.action.startsWith("entitlement."));
      const replayed = events.reduce(
        (status, e) => {
          expect(e.metadata.from).toBe(status);
          return e.action === "entitlement.revoked" ? "cancelled" : e.action === "entitlement.granted" ? "active" : "requested";
        },
        null as string | null,
      );
      expect(await statuses(id)).toEqual([["plain", replayed]]);
    });
  });
});
