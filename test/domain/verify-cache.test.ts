import { describe, expect, it } from "vitest";
import { CACHE_DEFAULTS, VerifyCache } from "../../src/domain/verify-cache.js";
import type { KeyFacts, TenantFacts } from "../../src/domain/verify-rules.js";

const key = (id: string, tenant_id = "t1"): KeyFacts => ({
  id,
  tenant_id,
  product: null,
  scopes: [],
  expiresAt: null,
  revoked: false,
  valid: { valid: true, key_id: id, tenant_id, product: null, scopes: [], expires_at: null },
});
const tenant = (id: string): TenantFacts => ({ id, status: "active", entitlements: new Map() });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function listening(opts = {}): VerifyCache {
  const c = new VerifyCache({ ...CACHE_DEFAULTS, ...opts });
  c.onReset(true);
  return c;
}

describe("verify cache", () => {
  it("a key notification drops that key's facts; a tenant one drops the tenant's; proofs and misses stay", () => {
    const c = listening();
    c.prove("d1", "k1");
    c.addMiss("wrong");
    c.putKey(key("k1"), c.epoch);
    c.putKey(key("k2"), c.epoch);
    c.putTenant(tenant("t1"), c.epoch);
    c.onNotify(JSON.stringify({ key_id: "k1" }));
    expect([c.key("k1"), c.key("k2")?.id, c.tenant("t1")?.id]).toEqual([undefined, "k2", "t1"]);
    c.onNotify(JSON.stringify({ tenant_id: "t1" }));
    expect([c.key("k2")?.id, c.tenant("t1")]).toEqual(["k2", undefined]);
    expect(c.proofOf("d1")).toBe("k1");
    expect(c.isMiss("wrong")).toBe(true);
  });

  it("a notification it cannot read drops every fact", () => {
    const c = listening();
    c.putKey(key("k1"), c.epoch);
    c.putTenant(tenant("t1"), c.epoch);
    c.onNotify("not json");
    expect([c.key("k1"), c.tenant("t1")]).toEqual([undefined, undefined]);
    c.putKey(key("k1"), c.epoch);
    c.onNotify("{}");
    expect(c.key("k1")).toBeUndefined();
  });

  it("a fill that raced an invalidation is not kept", () => {
    const c = listening();
    const before = c.epoch;
    c.onNotify(JSON.stringify({ key_id: "k1" }));
    c.putKey(key("k1"), before);
    c.putTenant(tenant("t1"), before);
    expect([c.key("k1"), c.tenant("t1")]).toEqual([undefined, undefined]);
    c.putKey(key("k1"), c.epoch);
    expect(c.key("k1")?.id).toBe("k1");
  });

  it("while notifications may be lost, facts live only the short TTL; a reset drops them", async () => {
    const c = listening({ factsTtlMs: 60_000, unlistenedTtlMs: 80 });
    c.putKey(key("k1"), c.epoch);
    c.onReset(false);
    expect(c.key("k1")).toBeUndefined();
    expect(c.stats().listening).toBe(false);
    c.putKey(key("k2"), c.epoch);
    expect(c.key("k2")?.id).toBe("k2");
    await sleep(150);
    expect(c.key("k2")).toBeUndefined();
    c.onReset(true);
    c.putKey(key("k3"), c.epoch);
    await sleep(150);
    expect(c.key("k3")?.id).toBe("k3");
  });

  it("is bounded: a flood of distinct misses keeps at most maxMisses", () => {
    const c = listening({ maxMisses: 100 });
    for (let i = 0; i < 10_000; i++) c.addMiss(`d${i}`);
    expect(c.stats().misses).toBe(100);
    expect(c.isMiss("d9999")).toBe(true);
    expect(c.isMiss("d0")).toBe(false);
  });
});
