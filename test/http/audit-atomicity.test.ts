import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";

const DOOMED = "audit-must-fail";

/**
 * A change and its audit event commit together or not at all. This file's
 * own database gets a trigger that refuses any audit row by DOOMED, so the
 * audit insert of a request made as DOOMED fails after the change itself
 * has been written in the same transaction.
 */
describe.each(ENGINES)("audit atomicity on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
    await t.store.db.exec(`
      CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.actor_id = '${DOOMED}' THEN RAISE EXCEPTION 'audit insert refused by the test'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION test_refuse_audit();
    `);
  });
  afterAll(() => t.close());

  const asDoomed = { "x-actor-id": DOOMED };
  const expectInternal = (res: { statusCode: number; body: string }) => {
    expect(res.statusCode).toBe(500);
    expect(JSON.parse(res.body)).toMatchObject({ code: "internal", detail: "internal error" });
    expect(res.body).not.toContain("refused");
  };
  const tenantAudit = async (id: string) =>
    (await t.store.db.query<{ action: string }>("SELECT action FROM audit_events WHERE tenant_id = $1 ORDER BY id", [id])).map(
      (r) => r.action,
    );

  it("a tenant create whose audit insert fails leaves no tenant", async () => {
    const slug = uniqueSlug();
    expectInternal(await t.call("admin", "POST", "/v1/tenants", { slug, name: "Never" }, asDoomed));
    expect((await t.call("admin", "GET", `/v1/tenants/by-slug/${slug}`)).statusCode).toBe(404);
    expect(await t.store.db.query("SELECT 1 FROM tenants WHERE slug = $1", [slug])).toEqual([]);
    // The same request by someone else goes through: only the audit insert was in the way.
    expect((await t.call("admin", "POST", "/v1/tenants", { slug, name: "Now" })).statusCode).toBe(201);
  });

  it("patch, activate and cancel whose audit insert fails change nothing", async () => {
    const created = (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Kept" })).json();
    expectInternal(await t.call("admin", "PATCH", `/v1/tenants/${created.id}`, { plan: "enterprise" }, asDoomed));
    expectInternal(await t.call("admin", "POST", `/v1/tenants/${created.id}/activate`, undefined, asDoomed));
    expectInternal(await t.call("admin", "POST", `/v1/tenants/${created.id}/cancel`, undefined, asDoomed));
    expect((await t.call("admin", "GET", `/v1/tenants/${created.id}`)).json()).toEqual(created);
    expect(await tenantAudit(created.id)).toEqual(["tenant.created"]);
  });

  it("a batch whose last event cannot be stored stores none", async () => {
    const tenant = (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Batch" })).json();
    const ok = { action: "b.ok", tenant_id: tenant.id };
    expectInternal(await t.call("service", "POST", "/v1/audit/batch", { events: [ok, ok, { ...ok, actor_id: DOOMED }] }));
    expect(await tenantAudit(tenant.id)).toEqual(["tenant.created"]);
  });

  it("the failure is logged with its request id; the client sees only the id", async () => {
    const res = await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Logged" }, asDoomed);
    const requestId = res.json().request_id;
    expect(requestId).toEqual(expect.any(String));
    expect(t.logs.some((l) => l.includes(requestId) && l.includes("refused by the test"))).toBe(true);
  });
});
