import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeCursor } from "../../src/http/pagination.js";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";

describe.each(ENGINES)("tenants API on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
  });
  afterAll(() => t.close());

  const create = async (extra: Record<string, unknown> = {}) => {
    const res = await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Tenant", ...extra });
    expect(res.statusCode).toBe(201);
    return res.json();
  };
  const audit = (id: string) =>
    t.store.db.query<{ action: string; actor_id: string; metadata: Record<string, unknown> }>(
      "SELECT action, actor_id, metadata FROM audit_events WHERE tenant_id = $1 ORDER BY id",
      [id],
    );

  describe("happy", () => {
    it("creates a tenant: 201, Location, defaults, audit by the principal", async () => {
      const slug = uniqueSlug();
      const res = await t.call("admin", "POST", "/v1/tenants", { slug, name: "Initech", kind: "partner", sales_owner: "dana" });
      expect(res.statusCode).toBe(201);
      const body = res.json();
      expect(res.headers.location).toBe(`/v1/tenants/${body.id}`);
      expect(body).toMatchObject({ slug, name: "Initech", plan: "starter", kind: "partner", status: "pending", sales_owner: "dana" });
      expect(body.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(await audit(body.id)).toEqual([{ action: "tenant.created", actor_id: "admin", metadata: { slug } }]);
    });

    it("gets by id and by slug, for every role", async () => {
      const tenant = await create();
      for (const role of ["admin", "service", "auditor"] as const) {
        expect((await t.call(role, "GET", `/v1/tenants/${tenant.id}`)).json()).toEqual(tenant);
        expect((await t.call(role, "GET", `/v1/tenants/by-slug/${tenant.slug}`)).json()).toEqual(tenant);
      }
    });

    it("lists newest first, filters, searches and pages with an opaque cursor", async () => {
      const tag = uniqueSlug("list");
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await t.call("admin", "POST", "/v1/tenants", {
          slug: `${tag}-${i}`,
          name: `Listed ${i}`,
          plan: i % 2 ? "growth" : "starter",
        });
        ids.push(res.json().id);
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await t.call("auditor", "GET", `/v1/tenants?q=${tag}&limit=2${cursor ? `&cursor=${cursor}` : ""}`);
        expect(res.statusCode).toBe(200);
        const body = res.json();
        seen.push(...body.tenants.map((x: { id: string }) => x.id));
        cursor = body.next_cursor;
      } while (cursor);
      expect(seen).toEqual([...ids].reverse());
      const growth = (await t.call("admin", "GET", `/v1/tenants?q=${tag}&plan=growth`)).json();
      expect(growth.tenants.map((x: { id: string }) => x.id)).toEqual([ids[3], ids[1]]);
      expect(growth.next_cursor).toBeNull();
      const byName = (await t.call("admin", "GET", `/v1/tenants?q=${encodeURIComponent("LISTED 4")}&status=pending`)).json();
      expect(byName.tenants.some((x: { id: string }) => x.id === ids[4])).toBe(true);
    });

    it("patches fields, clears with null, writes tenant.updated once and nothing for a no-op", async () => {
      const tenant = await create();
      const res = await t.call("admin", "PATCH", `/v1/tenants/${tenant.id}`, {
        plan: "enterprise",
        erp_customer_id: "ERP-1",
        contract_start: "2026-01-01T00:00:00Z",
        contract_end: "2027-01-01T00:00:00+00:00",
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ plan: "enterprise", erp_customer_id: "ERP-1", contract_end: "2027-01-01T00:00:00.000Z" });
      const same = await t.call("admin", "PATCH", `/v1/tenants/${tenant.id}`, { plan: "enterprise", contract_end: "2027-01-01T00:00:00Z" });
      expect(same.statusCode).toBe(200);
      const cleared = await t.call("admin", "PATCH", `/v1/tenants/${tenant.id}`, { erp_customer_id: null });
      expect(cleared.json().erp_customer_id).toBeNull();
      expect((await audit(tenant.id)).map((e) => e.action)).toEqual(["tenant.created", "tenant.updated", "tenant.updated"]);
    });

    it("activates and cancels idempotently; a cancelled tenant cannot be activated", async () => {
      const tenant = await create();
      const a1 = await t.call("admin", "POST", `/v1/tenants/${tenant.id}/activate`);
      expect([a1.statusCode, a1.json().status]).toEqual([200, "active"]);
      expect((await t.call("admin", "POST", `/v1/tenants/${tenant.id}/activate`)).statusCode).toBe(200);
      const c1 = await t.call("admin", "POST", `/v1/tenants/${tenant.id}/cancel`, {}, {});
      expect([c1.statusCode, c1.json().status]).toEqual([200, "cancelled"]);
      expect((await t.call("admin", "POST", `/v1/tenants/${tenant.id}/cancel`)).statusCode).toBe(200);
      const again = await t.call("admin", "POST", `/v1/tenants/${tenant.id}/activate`);
      expect(again.statusCode).toBe(409);
      expect(again.json().code).toBe("conflict");
      expect((await audit(tenant.id)).map((e) => e.action)).toEqual(["tenant.created", "tenant.activated", "tenant.cancelled"]);
    });

    it("records X-Actor-Id as the actor and the principal in metadata", async () => {
      const res = await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Via UI" }, { "x-actor-id": "rep@example.com" });
      const events = await audit(res.json().id);
      expect(events[0]).toMatchObject({ actor_id: "rep@example.com", metadata: { principal: "admin" } });
    });
  });

  describe("error", () => {
    it("409 on a taken slug", async () => {
      const tenant = await create();
      const res = await t.call("admin", "POST", "/v1/tenants", { slug: tenant.slug, name: "Again" });
      expect(res.statusCode).toBe(409);
      expect(res.headers["content-type"]).toContain("application/problem+json");
      expect(res.json()).toMatchObject({ status: 409, code: "conflict", title: "Conflict" });
    });

    it.each([
      [{ slug: "ab", name: "x" }, "body/slug"],
      [{ slug: "1abc", name: "x" }, "body/slug"],
      [{ slug: "abc-", name: "x" }, "body/slug"],
      [{ slug: "ABC", name: "x" }, "body/slug"],
      [{ slug: "a".repeat(64), name: "x" }, "body/slug"],
      [{ slug: "okay", name: "   " }, "body/name"],
      [{ slug: "okay", name: "x".repeat(201) }, "body/name"],
      [{ slug: "okay", name: "x", plan: "gold" }, "body/plan"],
      [{ slug: "okay", name: "x", kind: 3 }, "body/kind"],
      [{ slug: "okay", name: "x", status: "active" }, "body/status"],
      [{ slug: "okay" }, "body/name"],
      [{ slug: 123, name: "x" }, "body/slug"],
    ])("400 for %j naming %s", async (body, field) => {
      const res = await t.call("admin", "POST", "/v1/tenants", body);
      expect(res.statusCode).toBe(400);
      const p = res.json();
      expect(p.code).toBe("invalid_input");
      expect(p.errors.map((e: { field: string }) => e.field)).toContain(field);
    });

    it("404 for an unknown id or slug, 400 for a malformed id", async () => {
      expect((await t.call("admin", "GET", "/v1/tenants/6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10")).statusCode).toBe(404);
      expect((await t.call("admin", "GET", "/v1/tenants/by-slug/nobody-here")).statusCode).toBe(404);
      const bad = await t.call("admin", "GET", "/v1/tenants/not-a-uuid");
      expect([bad.statusCode, bad.json().errors[0].field]).toEqual([400, "params/id"]);
      expect((await t.call("admin", "POST", "/v1/tenants/6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10/cancel")).statusCode).toBe(404);
    });

    it("PATCH rejects status, unknown fields, empty bodies and an inverted contract", async () => {
      const tenant = await create();
      for (const body of [{ status: "active" }, { nickname: "x" }, {}, { plan: null }]) {
        expect((await t.call("admin", "PATCH", `/v1/tenants/${tenant.id}`, body)).statusCode).toBe(400);
      }
      const inverted = await t.call("admin", "PATCH", `/v1/tenants/${tenant.id}`, {
        contract_start: "2026-06-01T00:00:00Z",
        contract_end: "2026-05-01T00:00:00Z",
      });
      expect(inverted.statusCode).toBe(400);
      expect(inverted.json().detail).toMatch(/contract_end/);
    });

    it("400 for a forged cursor whose checksum passes but whose values are not a position", async () => {
      for (const values of [
        ["not-a-date", "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10"],
        [5, "x"],
        ["2026-01-01T00:00:00.000Z", "' OR 1=1"],
      ]) {
        const res = await t.call("admin", "GET", `/v1/tenants?cursor=${encodeCursor("tenants", values)}`);
        expect(res.statusCode, JSON.stringify(values)).toBe(400);
      }
      const foreign = await t.call("admin", "GET", `/v1/tenants?cursor=${encodeCursor("audit", ["12"])}`);
      expect(foreign.statusCode).toBe(400);
    });

    it("400 for bad list parameters and a tampered cursor", async () => {
      for (const qs of ["limit=0", "limit=201", "limit=x", "status=gone", "sort=name", "cursor=abc", "cursor=eyJ4Ijox.AAAAAAAAAAA"]) {
        const res = await t.call("admin", "GET", `/v1/tenants?${qs}`);
        expect(res.statusCode, qs).toBe(400);
      }
    });
  });

  describe("concurrency", () => {
    it("concurrent creates of one slug: exactly one 201, the rest 409", async () => {
      const slug = uniqueSlug();
      const results = await Promise.all(Array.from({ length: 8 }, () => t.call("admin", "POST", "/v1/tenants", { slug, name: "Race" })));
      const codes = results.map((r) => r.statusCode).sort();
      expect(codes).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    });

    it("racing activate and cancel never 5xx and write at most one tenant.cancelled", async () => {
      const tenant = await create();
      const calls = Array.from({ length: 10 }, (_, i) =>
        t.call("admin", "POST", `/v1/tenants/${tenant.id}/${i % 2 ? "cancel" : "activate"}`),
      );
      const results = await Promise.all(calls);
      for (const r of results) expect([200, 409]).toContain(r.statusCode);
      const actions = (await audit(tenant.id)).map((e) => e.action);
      expect(actions.filter((a) => a === "tenant.cancelled")).toHaveLength(1);
      expect(actions.filter((a) => a === "tenant.activated").length).toBeLessThanOrEqual(1);
    });
  });
});
