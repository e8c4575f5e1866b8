import { describe, expect, it } from "vitest";
import { evaluate, type KeyFacts, type TenantFacts } from "../../src/domain/verify-rules.js";

const NOW = Date.parse("2030-01-01T00:00:00Z");
const key = (over: Partial<KeyFacts> = {}): KeyFacts => {
  const base = { id: "k", tenant_id: "t", product: null, scopes: ["read"], expiresAt: null, revoked: false, ...over };
  return {
    ...base,
    valid: { valid: true, key_id: "k", tenant_id: "t", product: base.product, scopes: [...base.scopes], expires_at: null },
  };
};
const tenant = (status = "active", ents: [string, string, number | null][] = []): TenantFacts => ({
  id: "t",
  status,
  entitlements: new Map(ents.map(([p, s, end]) => [p, { status: s, trialEndsAt: end }])),
});

describe("verify rules", () => {
  it("a good key verifies with or without product and scope", () => {
    expect(evaluate(key(), tenant(), {}, NOW)).toMatchObject({ valid: true, key_id: "k" });
    expect(evaluate(key(), tenant("pending", [["crm", "active", null]]), { product: "crm", scope: "read" }, NOW).valid).toBe(true);
  });

  it("each reason, and the first failing condition wins", () => {
    const all = key({ revoked: true, expiresAt: NOW - 1, product: "crm", scopes: [] });
    const cancelled = tenant("cancelled");
    const ask = { product: "billing", scope: "write" };
    expect(evaluate(all, cancelled, ask, NOW)).toEqual({ valid: false, reason: "revoked" });
    expect(evaluate(key({ expiresAt: NOW, product: "crm", scopes: [] }), cancelled, ask, NOW)).toEqual({ valid: false, reason: "expired" });
    expect(evaluate(key({ expiresAt: NOW + 1, product: "crm", scopes: [] }), cancelled, ask, NOW)).toEqual({
      valid: false,
      reason: "tenant_cancelled",
    });
    expect(evaluate(key({ product: "crm", scopes: [] }), tenant(), ask, NOW)).toEqual({ valid: false, reason: "product_mismatch" });
    expect(evaluate(key({ scopes: [] }), tenant(), ask, NOW)).toEqual({ valid: false, reason: "not_entitled" });
    expect(evaluate(key({ scopes: [] }), tenant("active", [["billing", "active", null]]), ask, NOW)).toEqual({
      valid: false,
      reason: "insufficient_scope",
    });
  });

  it("entitled means active, or a trial that has not ended (a past trial reads as expired at once)", () => {
    const ask = { product: "crm" };
    const with_ = (status: string, end: number | null) => evaluate(key(), tenant("active", [["crm", status, end]]), ask, NOW);
    expect(with_("active", null).valid).toBe(true);
    expect(with_("trial", NOW + 1000).valid).toBe(true);
    for (const [status, end] of [
      ["trial", NOW],
      ["trial", NOW - 1],
      ["trial", null],
      ["requested", null],
      ["cancelled", null],
      ["expired", NOW - 1],
    ] as const) {
      expect(with_(status, end), `${status} ${end}`).toEqual({ valid: false, reason: "not_entitled" });
    }
    expect(evaluate(key(), tenant(), ask, NOW)).toEqual({ valid: false, reason: "not_entitled" });
  });

  it("entitlements are consulted only when a product is asked; scopes compare exactly", () => {
    expect(evaluate(key(), tenant("active"), {}, NOW).valid).toBe(true);
    expect(evaluate(key(), tenant(), { scope: "READ" }, NOW)).toEqual({ valid: false, reason: "insufficient_scope" });
    expect(evaluate(key(), tenant(), { scope: "rea" }, NOW)).toEqual({ valid: false, reason: "insufficient_scope" });
  });
});
