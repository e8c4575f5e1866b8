import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "../../src/domain/actor.js";
import { createApiKey } from "../../src/domain/api-keys.js";
import { newKeyMaterial } from "../../src/domain/key-material.js";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ensureProduct } from "../helpers/catalog-fixtures.js";
import { ENGINES } from "../helpers/db.js";

const UNKNOWN = "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10";
const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();

describe.each(ENGINES)("API keys API on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
    await ensureProduct(t.store.db, "crm");
    await ensureProduct(t.store.db, "legacy", { retired: true });
  });
  afterAll(() => t.close());

  const tenant = async () => {
    const res = await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Keyed" });
    expect(res.statusCode).toBe(201);
    return res.json() as { id: string };
  };
  const create = async (body: Record<string, unknown>, headers?: Record<string, string>) => {
    const res = await t.call("admin", "POST", "/v1/api-keys", { name: "ci", ...body }, headers);
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  };
  const audit = (tenantId: string) =>
    t.store.db.query<{ action: string; actor_id: string; product: string | null; target_id: string; metadata: Record<string, unknown> }>(
      "SELECT action, actor_id, product, target_id, metadata FROM audit_events WHERE tenant_id = $1 AND target_type = 'api_key' ORDER BY id",
      [tenantId],
    );

  describe("happy", () => {
    it("creates a key: 201 with the plaintext once, prefix, no hash; audit without the key", async () => {
      const { id: tenantId } = await tenant();
      const expires = inAnHour();
      const res = await t.call("admin", "POST", "/v1/api-keys", {
        tenant_id: tenantId,
        name: "  billing sync  ",
        product: "crm",
        scopes: ["read", "write:orders"],
        expires_at: expires,
      });
      expect(res.statusCode).toBe(201);
      const body = res.json();
      expect(body.key).toMatch(/^bp_[A-Za-z0-9_-]{22}$/);
      expect(body).toMatchObject({
        tenant_id: tenantId,
        product: "crm",
        name: "billing sync",
        scopes: ["read", "write:orders"],
        prefix: body.key.slice(0, 11),
        created_by: "admin",
        expires_at: new Date(expires).toISOString(),
        last_used_at: null,
        revoked_at: null,
      });
      expect(body.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Object.keys(body)).not.toContain("hash");
      const events = await audit(tenantId);
      expect(events).toEqual([
        {
          action: "api_key.created",
          actor_id: "admin",
          product: "crm",
          target_id: body.id,
          metadata: { name: "billing sync", prefix: body.prefix, scopes: ["read", "write:orders"], expires_at: body.expires_at },
        },
      ]);
      const stored = await t.store.db.query<{ hash: string }>("SELECT hash FROM api_keys WHERE id = $1", [body.id]);
      expect(stored[0]?.hash).toMatch(/^argon2id\|/);
      expect(JSON.stringify(stored)).not.toContain(body.key.slice(3));
    });

    it("defaults: every product, no scopes, no expiry; X-Actor-Id is created_by", async () => {
      const { id: tenantId } = await tenant();
      const body = await create({ tenant_id: tenantId, product: null }, { "x-actor-id": "rep@example.com" });
      expect(body).toMatchObject({ product: null, scopes: [], expires_at: null, created_by: "rep@example.com" });
      const events = await audit(tenantId);
      expect(events[0]).toMatchObject({ actor_id: "rep@example.com", metadata: { principal: "admin" } });
    });

    it("lists a tenant's keys newest first, revoked included, paged, never the key or hash; admin and auditor", async () => {
      const { id: tenantId } = await tenant();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await create({ tenant_id: tenantId, name: `k${i}` })).id);
      expect((await t.call("admin", "DELETE", `/v1/api-keys/${ids[1]}`)).statusCode).toBe(204);
      const seen: Record<string, unknown>[] = [];
      let cursor: string | null = null;
      do {
        const res = await t.call("auditor", "GET", `/v1/api-keys?tenant_id=${tenantId}&limit=2${cursor ? `&cursor=${cursor}` : ""}`);
        expect(res.statusCode).toBe(200);
        const page = res.json();
        expect(page.api_keys.length).toBeLessThanOrEqual(2);
        seen.push(...page.api_keys);
        cursor = page.next_cursor;
      } while (cursor);
      expect(seen.map((k) => k.id)).toEqual([...ids].reverse());
      expect(seen.find((k) => k.id === ids[1])?.revoked_at).toMatch(/Z$/);
      for (const k of seen) {
        expect(Object.keys(k).sort()).toEqual(
          [
            "created_at",
            "created_by",
            "expires_at",
            "id",
            "last_used_at",
            "name",
            "prefix",
            "product",
            "revoked_at",
            "scopes",
            "tenant_id",
          ].sort(),
        );
      }
      const other = await tenant();
      expect((await t.call("admin", "GET", `/v1/api-keys?tenant_id=${other.id}`)).json()).toEqual({ api_keys: [], next_cursor: null });
    });

    it("revokes: 204, again 204 without a second audit event", async () => {
      const { id: tenantId } = await tenant();
      const key = await create({ tenant_id: tenantId, product: "crm" });
      const first = await t.call("admin", "DELETE", `/v1/api-keys/${key.id}`);
      expect([first.statusCode, first.body]).toEqual([204, ""]);
      expect((await t.call("admin", "DELETE", `/v1/api-keys/${key.id}`)).statusCode).toBe(204);
      const events = await audit(tenantId);
      expect(events.map((e) => e.action)).toEqual(["api_key.created", "api_key.revoked"]);
      expect(events[1]).toMatchObject({ product: "crm", target_id: key.id, metadata: { name: "ci", prefix: key.prefix } });
    });

    it("a pending tenant can have keys", async () => {
      const { id: tenantId } = await tenant();
      expect((await create({ tenant_id: tenantId })).tenant_id).toBe(tenantId);
    });
  });

  describe("error", () => {
    it("404 for an unknown tenant, an unknown product or a retired one; 409 for a cancelled tenant; nothing stored", async () => {
      const { id: tenantId } = await tenant();
      const unknownTenant = await t.call("admin", "POST", "/v1/api-keys", { tenant_id: UNKNOWN, name: "x" });
      expect([unknownTenant.statusCode, unknownTenant.json().code, unknownTenant.json().detail]).toEqual([
        404,
        "not_found",
        "tenant not found",
      ]);
      for (const product of ["nope", "legacy"]) {
        const res = await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenantId, name: "x", product });
        expect([res.statusCode, res.json().detail]).toEqual([404, "product not found"]);
      }
      await t.call("admin", "POST", `/v1/tenants/${tenantId}/cancel`);
      const cancelled = await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenantId, name: "x" });
      expect([cancelled.statusCode, cancelled.json().code]).toEqual([409, "conflict"]);
      expect(await t.store.db.query("SELECT 1 FROM api_keys WHERE tenant_id = $1", [tenantId])).toHaveLength(0);
      expect(await audit(tenantId)).toHaveLength(0);
    });

    it.each([
      [{ name: "x" }, "body/tenant_id"],
      [{ tenant_id: "nope", name: "x" }, "body/tenant_id"],
      [{ tenant_id: UNKNOWN }, "body/name"],
      [{ tenant_id: UNKNOWN, name: "   " }, "body/name"],
      [{ tenant_id: UNKNOWN, name: "x".repeat(201) }, "body/name"],
      [{ tenant_id: UNKNOWN, name: "x", scopes: ["a", "a"] }, "body/scopes"],
      [{ tenant_id: UNKNOWN, name: "x", scopes: ["has space"] }, "body/scopes/0"],
      [{ tenant_id: UNKNOWN, name: "x", scopes: [""] }, "body/scopes/0"],
      [{ tenant_id: UNKNOWN, name: "x", scopes: "read" }, "body/scopes"],
      [{ tenant_id: UNKNOWN, name: "x", product: "" }, "body/product"],
      [{ tenant_id: UNKNOWN, name: "x", expires_at: "tomorrow" }, "body/expires_at"],
      [{ tenant_id: UNKNOWN, name: "x", key: "bp_chosen" }, "body/key"],
    ])("400 for %j naming %s", async (body, field) => {
      const res = await t.call("admin", "POST", "/v1/api-keys", body);
      expect(res.statusCode).toBe(400);
      expect(res.json().errors.map((e: { field: string }) => e.field)).toContain(field);
    });

    it("400 for an expiry that is not in the future", async () => {
      const { id: tenantId } = await tenant();
      const res = await t.call("admin", "POST", "/v1/api-keys", {
        tenant_id: tenantId,
        name: "x",
        expires_at: new Date(Date.now() - 1000).toISOString(),
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().errors).toEqual([{ field: "body/expires_at", message: "must lie in the future" }]);
    });

    it("revoke: 404 for an unknown id, 400 for a malformed one", async () => {
      expect((await t.call("admin", "DELETE", `/v1/api-keys/${UNKNOWN}`)).statusCode).toBe(404);
      const bad = await t.call("admin", "DELETE", "/v1/api-keys/not-a-uuid");
      expect([bad.statusCode, bad.json().errors[0].field]).toEqual([400, "params/id"]);
    });

    it("list: 404 for an unknown tenant; 400 without tenant_id, with a bad limit, an unknown parameter or a foreign cursor", async () => {
      expect((await t.call("admin", "GET", `/v1/api-keys?tenant_id=${UNKNOWN}`)).statusCode).toBe(404);
      const { id } = await tenant();
      const tenantsCursor = (await t.call("admin", "GET", "/v1/tenants?limit=1")).json().next_cursor;
      for (const qs of [
        "",
        "tenant_id=x",
        `tenant_id=${id}&limit=0`,
        `tenant_id=${id}&limit=201`,
        `tenant_id=${id}&status=revoked`,
        `tenant_id=${id}&cursor=${tenantsCursor}`,
      ]) {
        expect((await t.call("admin", "GET", `/v1/api-keys?${qs}`)).statusCode, qs).toBe(400);
      }
    });
  });

  describe("concurrency", () => {
    it("concurrent creates all succeed, each with its own prefix", async () => {
      const { id: tenantId } = await tenant();
      const results = await Promise.all(
        Array.from({ length: 6 }, () => t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenantId, name: "x" })),
      );
      expect(results.map((r) => r.statusCode)).toEqual(Array(6).fill(201));
      expect(new Set(results.map((r) => r.json().prefix)).size).toBe(6);
    });

    it("racing revokes: all 204, one audit event", async () => {
      const { id: tenantId } = await tenant();
      const key = await create({ tenant_id: tenantId });
      const results = await Promise.all(Array.from({ length: 8 }, () => t.call("admin", "DELETE", `/v1/api-keys/${key.id}`)));
      expect(results.map((r) => r.statusCode)).toEqual(Array(8).fill(204));
      expect((await audit(tenantId)).filter((e) => e.action === "api_key.revoked")).toHaveLength(1);
    });

    it("a create racing the tenant's cancel either lands before it or gets 409", async () => {
      const { id: tenantId } = await tenant();
      const [created, cancelled] = await Promise.all([
        t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenantId, name: "x" }),
        t.call("admin", "POST", `/v1/tenants/${tenantId}/cancel`),
      ]);
      expect(cancelled.statusCode).toBe(200);
      expect([201, 409]).toContain(created.statusCode);
    });
  });
});

describe.each(ENGINES)("API key prefixes on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
  });
  afterAll(() => t.close());

  it("creation draws again when a prefix is taken, and gives up after a few collisions", async () => {
    const tenantId = (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Collide" })).json().id;
    const taken = await createApiKey(t.store.db, t.app.keyServices.hasher, { tenant_id: tenantId, name: "first" }, SYSTEM_ACTOR);
    const fresh = newKeyMaterial();
    const draws = [{ key: `${taken.prefix}${fresh.key.slice(11)}`, prefix: taken.prefix }, fresh];
    const second = await createApiKey(
      t.store.db,
      t.app.keyServices.hasher,
      { tenant_id: tenantId, name: "second" },
      SYSTEM_ACTOR,
      () => draws.shift() ?? newKeyMaterial(),
    );
    expect([second.prefix, second.key]).toEqual([fresh.prefix, fresh.key]);
    const always = () => ({ key: `${taken.prefix}${newKeyMaterial().key.slice(11)}`, prefix: taken.prefix });
    await expect(
      createApiKey(t.store.db, t.app.keyServices.hasher, { tenant_id: tenantId, name: "third" }, SYSTEM_ACTOR, always),
    ).rejects.toMatchObject({
      code: "internal",
    });
    const names = await t.store.db.query<{ name: string }>("SELECT name FROM api_keys WHERE tenant_id = $1 ORDER BY created_at", [
      tenantId,
    ]);
    expect(names.map((r) => r.name)).toEqual(["first", "second"]);
  });
});
