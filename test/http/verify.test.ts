import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { notifyVerifyChange } from "../../src/store/notify.js";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ensureProduct, setEntitlement } from "../helpers/catalog-fixtures.js";
import { countingStore } from "../helpers/counting-db.js";
import { ENGINES, openTestDb, type TestDb } from "../helpers/db.js";

const VERIFY = "/v1/internal/api-keys/verify";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A key with the same prefix as `key` and another secret. */
const sameprefix = (key: string) => `${key.slice(0, 11)}${key.slice(11).split("").reverse().join("")}`;

describe.each(ENGINES)("verify on %s", (engine) => {
  let store: TestDb;
  let t: TestApp;
  let queries: () => number;
  beforeAll(async () => {
    store = await openTestDb(engine);
    const counted = countingStore(store);
    queries = counted.queries;
    // No audit log sequencer: its rounds would be statements the tests below count.
    t = await openTestApp(engine, counted.store, { AUDIT_LOG_SEQUENCER: "off" });
    await ensureProduct(store.db, "crm");
    await ensureProduct(store.db, "billing");
  });
  afterAll(async () => {
    await t.close();
    await store.close();
  });

  const tenant = async () =>
    (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Verified" })).json() as { id: string };
  const createKey = async (tenantId: string, extra: Record<string, unknown> = {}) => {
    const res = await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenantId, name: "k", ...extra });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; key: string; prefix: string; expires_at: string | null };
  };
  const verify = async (body: Record<string, unknown>) => {
    const res = await t.call("service", "POST", VERIFY, body);
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  };
  const reason = async (body: Record<string, unknown>) => {
    const r = await verify(body);
    return r.valid ? "valid" : r.reason;
  };
  /** Writes pending last_used_at now, so the coalescer's timer sends no statement while a test counts them. */
  const settle = () => t.app.keyServices.lastUsed.flush();
  /** Revocation, cancellation and entitlement changes must show within about a second. */
  const within1s = (body: Record<string, unknown>, expected: string) =>
    expect.poll(() => reason(body), { timeout: 1000, interval: 20 }).toBe(expected);

  describe("happy", () => {
    it("a good key: 200 with key_id, tenant_id, product, scopes, expires_at; admin may call it too", async () => {
      const { id: tenantId } = await tenant();
      await setEntitlement(store, tenantId, "crm", "active");
      const k = await createKey(tenantId, { product: "crm", scopes: ["read"], expires_at: new Date(Date.now() + 3600_000).toISOString() });
      const expected = { valid: true, key_id: k.id, tenant_id: tenantId, product: "crm", scopes: ["read"], expires_at: k.expires_at };
      expect(await verify({ key: k.key })).toEqual(expected);
      expect(await verify({ key: k.key, product: "crm", scope: "read" })).toEqual(expected);
      const asAdmin = await t.call("admin", "POST", VERIFY, { key: k.key });
      expect([asAdmin.statusCode, asAdmin.json().valid]).toEqual([200, true]);
    });

    it("a key for every product verifies for any product the tenant is entitled to", async () => {
      const { id: tenantId } = await tenant();
      await setEntitlement(store, tenantId, "crm", "active");
      await setEntitlement(store, tenantId, "billing", "trial", new Date(Date.now() + 86400_000));
      const k = await createKey(tenantId);
      expect(await verify({ key: k.key, product: "crm" })).toMatchObject({ valid: true, product: null, scopes: [], expires_at: null });
      expect(await reason({ key: k.key, product: "billing" })).toBe("valid");
    });
  });

  describe("every reason", () => {
    it("malformed: anything not ^bp_[A-Za-z0-9_-]{22}$, without a lookup", async () => {
      const { id: tenantId } = await tenant();
      const { key } = await createKey(tenantId);
      await settle();
      const before = queries();
      for (const bad of [
        "",
        "bp_",
        key.slice(0, -1),
        `${key}A`,
        ` ${key}`,
        `${key}\n`,
        `BP_${key.slice(3)}`,
        `bp_${"=".repeat(22)}`,
        "x".repeat(5000),
      ]) {
        expect(await verify({ key: bad }), JSON.stringify(bad.slice(0, 30))).toEqual({ valid: false, reason: "malformed" });
      }
      expect(queries()).toBe(before);
    });

    it("not_found: an unknown key, and a known prefix with the wrong secret, alike", async () => {
      const { id: tenantId } = await tenant();
      const { key } = await createKey(tenantId);
      expect(await verify({ key: "bp_AAAAAAAAAAAAAAAAAAAAAA" })).toEqual({ valid: false, reason: "not_found" });
      expect(await verify({ key: sameprefix(key) })).toEqual({ valid: false, reason: "not_found" });
      expect(await reason({ key })).toBe("valid");
    });

    it("revoked: at once, even for a key answered from the cache", async () => {
      const { id: tenantId } = await tenant();
      const k = await createKey(tenantId);
      expect(await reason({ key: k.key })).toBe("valid");
      await t.call("admin", "DELETE", `/v1/api-keys/${k.id}`);
      await within1s({ key: k.key }, "revoked");
    });

    it("expired: checked when read, so a cached key expires on time", async () => {
      const { id: tenantId } = await tenant();
      // Seconds ahead, not milliseconds: on a busy machine the create itself (argon2) can take a second.
      const k = await createKey(tenantId, { expires_at: new Date(Date.now() + 3000).toISOString() });
      expect(await reason({ key: k.key })).toBe("valid");
      await sleep(Date.parse(k.expires_at ?? "") - Date.now() + 10);
      expect(await reason({ key: k.key })).toBe("expired");
    });

    it("tenant_cancelled: cancelling the tenant stops its cached keys; a pending tenant's keys verify", async () => {
      const { id: tenantId } = await tenant();
      const k = await createKey(tenantId);
      expect(await reason({ key: k.key })).toBe("valid");
      await t.call("admin", "POST", `/v1/tenants/${tenantId}/cancel`);
      await within1s({ key: k.key }, "tenant_cancelled");
    });

    it("activating the tenant drops its cached facts (activation turns requested entitlements active)", async () => {
      const { id: tenantId } = await tenant();
      const k = await createKey(tenantId);
      expect(await reason({ key: k.key })).toBe("valid");
      expect(t.app.keyServices.cache.tenant(tenantId)).toBeDefined();
      await t.call("admin", "POST", `/v1/tenants/${tenantId}/activate`);
      await expect.poll(() => t.app.keyServices.cache.tenant(tenantId), { timeout: 1000 }).toBeUndefined();
    });

    it("product_mismatch: a key for one product asked about another (before entitlement is consulted)", async () => {
      const { id: tenantId } = await tenant();
      await setEntitlement(store, tenantId, "crm", "active");
      const k = await createKey(tenantId, { product: "crm" });
      expect(await reason({ key: k.key, product: "billing" })).toBe("product_mismatch");
      expect(await reason({ key: k.key, product: "crm" })).toBe("valid");
    });

    it("not_entitled: follows the tenant's entitlement, including a trial that ended but was not swept yet", async () => {
      const { id: tenantId } = await tenant();
      const k = await createKey(tenantId, { product: "crm" });
      const ask = { key: k.key, product: "crm" };
      expect(await reason(ask)).toBe("not_entitled");
      await setEntitlement(store, tenantId, "crm", "requested");
      await within1s(ask, "not_entitled");
      const trialEnd = new Date(Date.now() + 2000);
      await setEntitlement(store, tenantId, "crm", "trial", trialEnd);
      await within1s(ask, "valid");
      await sleep(trialEnd.getTime() - Date.now() + 10);
      expect(await reason(ask)).toBe("not_entitled");
      await setEntitlement(store, tenantId, "crm", "active");
      await within1s(ask, "valid");
      await setEntitlement(store, tenantId, "crm", "cancelled");
      await within1s(ask, "not_entitled");
      await setEntitlement(store, tenantId, "crm", "expired");
      await within1s(ask, "not_entitled");
      expect(await reason({ key: k.key })).toBe("valid");
    });

    it("insufficient_scope: the asked scope must be held exactly; checked last", async () => {
      const { id: tenantId } = await tenant();
      const k = await createKey(tenantId, { product: "crm", scopes: ["read", "write"] });
      expect(await reason({ key: k.key, scope: "write" })).toBe("valid");
      expect(await reason({ key: k.key, scope: "admin" })).toBe("insufficient_scope");
      expect(await reason({ key: k.key, scope: "Read" })).toBe("insufficient_scope");
      expect(await reason({ key: k.key, product: "crm", scope: "admin" })).toBe("not_entitled");
    });

    it("the first failing condition wins: revoked before expired before tenant_cancelled", async () => {
      const { id: tenantId } = await tenant();
      const a = await createKey(tenantId);
      const b = await createKey(tenantId);
      await t.call("admin", "DELETE", `/v1/api-keys/${a.id}`);
      await t.call("admin", "POST", `/v1/tenants/${tenantId}/cancel`);
      // Expired behind the API's back (it refuses a past expiry); the notification stands in for the change.
      await store.db.tx(async (q) => {
        await q.query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE tenant_id = $1", [tenantId]);
        await notifyVerifyChange(q, { key_id: a.id });
        await notifyVerifyChange(q, { key_id: b.id });
      });
      await within1s({ key: a.key, product: "crm", scope: "x" }, "revoked");
      await within1s({ key: b.key, product: "crm", scope: "x" }, "expired");
    });
  });

  describe("the hot path", () => {
    it("a key that verified recently costs no SQL and no argon2", async () => {
      const { id: tenantId } = await tenant();
      await setEntitlement(store, tenantId, "crm", "active");
      const k = await createKey(tenantId, { product: "crm", scopes: ["read"] });
      expect(await reason({ key: k.key, product: "crm" })).toBe("valid");
      await settle();
      const [q0, h0] = [queries(), t.app.keyServices.argon2.stats().hashed];
      for (let i = 0; i < 50; i++)
        expect(await reason({ key: k.key, product: "crm", scope: i % 2 ? "read" : "write" })).toBe(i % 2 ? "valid" : "insufficient_scope");
      expect([queries() - q0, t.app.keyServices.argon2.stats().hashed - h0]).toEqual([0, 0]);
    });

    it("a repeated wrong key is answered from the negative cache", async () => {
      const { id: tenantId } = await tenant();
      const { key } = await createKey(tenantId);
      const wrong = sameprefix(key);
      const h0 = t.app.keyServices.argon2.stats().hashed;
      expect(await reason({ key: wrong })).toBe("not_found");
      expect(t.app.keyServices.argon2.stats().hashed - h0).toBe(1);
      await settle();
      const q0 = queries();
      for (let i = 0; i < 10; i++) expect(await reason({ key: wrong })).toBe("not_found");
      expect([queries() - q0, t.app.keyServices.argon2.stats().hashed - h0]).toEqual([0, 1]);
    });

    it("an unknown prefix costs one indexed read and no argon2", async () => {
      const h0 = t.app.keyServices.argon2.stats().hashed;
      await settle();
      const q0 = queries();
      expect(await reason({ key: "bp_ZZZZZZZZzzzzzzzzzzzzzz" })).toBe("not_found");
      expect([queries() - q0, t.app.keyServices.argon2.stats().hashed - h0]).toEqual([1, 0]);
    });

    it("concurrent lookups of unknown prefixes share one query", async () => {
      const keys = Array.from({ length: 20 }, (_, i) => `bp_${String(i).padStart(8, "q")}${"Z".repeat(14)}`);
      await settle();
      const q0 = queries();
      const results = await Promise.all(keys.map((key) => reason({ key })));
      expect(results).toEqual(Array(20).fill("not_found"));
      expect(queries() - q0).toBeLessThanOrEqual(2);
    });

    it("concurrent first verifies of one key share one argon2 hash", async () => {
      const { id: tenantId } = await tenant();
      const k = await createKey(tenantId);
      const h0 = t.app.keyServices.argon2.stats().hashed;
      const results = await Promise.all(Array.from({ length: 20 }, () => reason({ key: k.key })));
      expect(results).toEqual(Array(20).fill("valid"));
      expect(t.app.keyServices.argon2.stats().hashed - h0).toBe(1);
    });

    it("after a revoke the key is re-read, not re-hashed (the proof that the secret matched stays)", async () => {
      const { id: tenantId } = await tenant();
      const k = await createKey(tenantId);
      expect(await reason({ key: k.key })).toBe("valid");
      const h0 = t.app.keyServices.argon2.stats().hashed;
      await t.call("admin", "DELETE", `/v1/api-keys/${k.id}`);
      await within1s({ key: k.key }, "revoked");
      expect(t.app.keyServices.argon2.stats().hashed - h0).toBe(0);
    });

    it("last_used_at: noted on a valid verify, written off the request path, at most once a minute", async () => {
      const { id: tenantId } = await tenant();
      const k = await createKey(tenantId);
      await t.app.keyServices.lastUsed.flush();
      expect(await reason({ key: k.key, scope: "nope" })).toBe("insufficient_scope");
      expect(t.app.keyServices.lastUsed.pendingCount).toBe(0);
      expect(await reason({ key: k.key })).toBe("valid");
      expect(t.app.keyServices.lastUsed.pendingCount).toBe(1);
      await t.app.keyServices.lastUsed.flush();
      const listed = (await t.call("admin", "GET", `/v1/api-keys?tenant_id=${tenantId}`)).json().api_keys[0];
      expect(Date.now() - Date.parse(listed.last_used_at)).toBeLessThan(10_000);
      expect(await reason({ key: k.key })).toBe("valid");
      expect(t.app.keyServices.lastUsed.pendingCount).toBe(0);
    });
  });

  describe("error", () => {
    it.each([
      [{}, "body/key"],
      [{ key: 1 }, "body/key"],
      [{ key: null }, "body/key"],
      [{ key: "bp_x", product: null }, "body/product"],
      [{ key: "bp_x", scope: ["read"] }, "body/scope"],
      [{ key: "bp_x", tenant_id: "x" }, "body/tenant_id"],
    ])("400 for %j naming %s", async (body, field) => {
      const res = await t.call("service", "POST", VERIFY, body);
      expect(res.statusCode).toBe(400);
      expect(res.json().errors.map((e: { field: string }) => e.field)).toContain(field);
    });

    it("400 for a body that is not JSON, 415 for another content type", async () => {
      const notJson = await t.call("service", "POST", VERIFY, "{key:", { "content-type": "application/json" });
      expect(notJson.statusCode).toBe(400);
      const text = await t.call("service", "POST", VERIFY, "bp_x", { "content-type": "text/plain" });
      expect(text.statusCode).toBe(415);
    });

    it("the plaintext key never reaches a log line, an audit row or an error message", async () => {
      const { id: tenantId } = await tenant();
      const k = await createKey(tenantId, { scopes: ["read"] });
      const secret = k.key.slice(11);
      const answers = [
        await t.call("service", "POST", VERIFY, { key: k.key }),
        await t.call("service", "POST", VERIFY, { key: k.key, scope: "write" }),
        await t.call("service", "POST", VERIFY, { key: k.key, extra: k.key }),
        await t.call("service", "POST", VERIFY, { key: k.key, product: 1 }),
        await t.call("service", "POST", VERIFY, `{"key": "${k.key}" oops}`, { "content-type": "application/json" }),
        await t.call("auditor", "POST", VERIFY, { key: k.key }),
        await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenantId, name: "x", scopes: [k.key, k.key] }),
        await t.call("admin", "DELETE", `/v1/api-keys/${k.id}`),
      ];
      expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 400, 400, 400, 403, 400, 204]);
      for (const a of answers.slice(2)) expect(a.body).not.toContain(secret);
      expect(t.logs.join("").length).toBeGreaterThan(0);
      expect(t.logs.some((l) => l.includes("/v1/api-keys"))).toBe(true);
      expect(t.logs.join("")).not.toContain(secret);
      const audit = await store.db.query("SELECT * FROM audit_events WHERE tenant_id = $1", [tenantId]);
      expect(audit.length).toBeGreaterThanOrEqual(2);
      expect(JSON.stringify(audit)).not.toContain(secret);
    });
  });
});

describe.each(ENGINES)("verify under an argon2 flood on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine, undefined, { ARGON2_THREADS: "1", ARGON2_QUEUE: "1" });
  });
  afterAll(() => t.close());

  it("excess unseen keys get 503 with Retry-After, never a crash; cached keys keep verifying", async () => {
    const tenantId = (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Flooded" })).json().id;
    const good = (await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenantId, name: "good" })).json().key as string;
    expect((await t.call("service", "POST", VERIFY, { key: good })).json().valid).toBe(true);
    const prefix = good.slice(0, 11);
    const flood = Array.from({ length: 12 }, (_, i) => `${prefix}${String(i).padStart(14, "x")}`);
    const [answers, cached] = await Promise.all([
      Promise.all(flood.map((key) => t.call("service", "POST", VERIFY, { key }))),
      Promise.all(Array.from({ length: 20 }, () => t.call("service", "POST", VERIFY, { key: good }))),
    ]);
    const refused = answers.filter((a) => a.statusCode === 503);
    expect(refused.length).toBeGreaterThan(0);
    expect(answers.every((a) => a.statusCode === 200 || a.statusCode === 503)).toBe(true);
    for (const a of refused) {
      expect(a.headers["retry-after"]).toBe("1");
      expect(a.json()).toMatchObject({ status: 503, code: "unavailable" });
    }
    for (const a of answers.filter((x) => x.statusCode === 200)) expect(a.json()).toEqual({ valid: false, reason: "not_found" });
    expect(cached.map((c) => c.json().valid)).toEqual(Array(20).fill(true));
  });
});
