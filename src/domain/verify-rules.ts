import type { VerifyReason, VerifyResult } from "../schemas/api-key.js";

/** What verify needs to know about a key whose secret matched. */
export interface KeyFacts {
  id: string;
  tenant_id: string;
  product: string | null;
  scopes: readonly string[];
  /** Epoch ms; expiry is checked at read time, so a cached key expires on time. */
  expiresAt: number | null;
  revoked: boolean;
  /** The answer when every check passes, built once per load. */
  valid: VerifyResult & { valid: true };
}

export interface EntitlementFacts {
  status: string;
  /** Epoch ms; a trial past its end reads as expired at once, before the sweep stores it. */
  trialEndsAt: number | null;
}

export interface TenantFacts {
  id: string;
  status: string;
  entitlements: ReadonlyMap<string, EntitlementFacts>;
}

export interface VerifyAsk {
  product?: string | undefined;
  scope?: string | undefined;
}

// One frozen answer per reason: the hot path allocates nothing for a refusal.
const REFUSALS = new Map<VerifyReason, VerifyResult>();
export function refuse(reason: VerifyReason): VerifyResult {
  let r = REFUSALS.get(reason);
  if (!r) {
    r = Object.freeze({ valid: false as const, reason });
    REFUSALS.set(reason, r);
  }
  return r;
}

function entitled(e: EntitlementFacts | undefined, now: number): boolean {
  if (!e) return false;
  if (e.status === "active") return true;
  return e.status === "trial" && e.trialEndsAt !== null && e.trialEndsAt > now;
}

/**
 * SPEC's verify rules after the key is found: the first failing condition,
 * in the contract's order, is the reason.
 */
export function evaluate(key: KeyFacts, tenant: TenantFacts, ask: VerifyAsk, now: number): VerifyResult {
  if (key.revoked) return refuse("revoked");
  if (key.expiresAt !== null && key.expiresAt <= now) return refuse("expired");
  if (tenant.status === "cancelled") return refuse("tenant_cancelled");
  if (ask.product !== undefined) {
    if (key.product !== null && key.product !== ask.product) return refuse("product_mismatch");
    if (!entitled(tenant.entitlements.get(ask.product), now)) return refuse("not_entitled");
  }
  if (ask.scope !== undefined && !key.scopes.includes(ask.scope)) return refuse("insufficient_scope");
  return key.valid;
}
