import { LRUCache } from "lru-cache";
import type { KeyFacts, TenantFacts } from "./verify-rules.js";

export interface VerifyCacheOptions {
  maxKeys: number;
  maxTenants: number;
  maxMisses: number;
  /** How long facts are trusted while change notifications flow (a backstop for a change that did not notify). */
  factsTtlMs: number;
  /** How long facts are trusted while notifications may be lost: "within about a second" still holds. */
  unlistenedTtlMs: number;
  missTtlMs: number;
}

export const CACHE_DEFAULTS: VerifyCacheOptions = {
  maxKeys: 50_000,
  maxTenants: 20_000,
  maxMisses: 10_000,
  factsTtlMs: 60_000,
  unlistenedTtlMs: 1_000,
  missTtlMs: 60_000,
};

/**
 * What verify remembers, split so that each change evicts exactly what it
 * can flip, and all of it bounded (LRU):
 * - proofs: digest of a presented key -> id of the key it is the secret of.
 *   argon2 proved it once and it stays true (a key's secret never changes),
 *   so invalidation keeps proofs: after a revoke, the next verify of that key
 *   costs one SQL read, not another hash.
 * - keys: key id -> revoked, expiry, product, scopes, tenant.
 * - tenants: tenant id -> status and entitlements.
 * - misses: digests that are no key's secret (the negative cache), so a
 *   repeated wrong key costs neither SQL nor argon2.
 */
export class VerifyCache {
  private readonly proofs: LRUCache<string, string>;
  private readonly keys: LRUCache<string, KeyFacts>;
  private readonly tenants: LRUCache<string, TenantFacts>;
  private readonly misses: LRUCache<string, true>;
  private listening = false;
  private generation = 0;

  constructor(private readonly opts: VerifyCacheOptions = CACHE_DEFAULTS) {
    this.proofs = new LRUCache({ max: opts.maxKeys });
    this.keys = new LRUCache({ max: opts.maxKeys, ttl: opts.factsTtlMs });
    this.tenants = new LRUCache({ max: opts.maxTenants, ttl: opts.factsTtlMs });
    this.misses = new LRUCache({ max: opts.maxMisses, ttl: opts.missTtlMs });
  }

  /**
   * Bumped by every invalidation. A fill reads it before its SQL and passes
   * it back: if an invalidation arrived in between, what was read may
   * already be stale, so it answers that one request but is not kept.
   */
  get epoch(): number {
    return this.generation;
  }

  proofOf(digest: string): string | undefined {
    return this.proofs.get(digest);
  }
  prove(digest: string, keyId: string): void {
    this.proofs.set(digest, keyId);
  }
  forgetProof(digest: string): void {
    this.proofs.delete(digest);
  }

  isMiss(digest: string): boolean {
    return this.misses.get(digest) === true;
  }
  addMiss(digest: string): void {
    this.misses.set(digest, true);
  }

  key(id: string): KeyFacts | undefined {
    return this.keys.get(id);
  }
  putKey(facts: KeyFacts, epoch: number): void {
    if (epoch === this.generation) this.keys.set(facts.id, facts, { ttl: this.ttl() });
  }

  tenant(id: string): TenantFacts | undefined {
    return this.tenants.get(id);
  }
  putTenant(facts: TenantFacts, epoch: number): void {
    if (epoch === this.generation) this.tenants.set(facts.id, facts, { ttl: this.ttl() });
  }

  /** A change notification (store/notify.ts): `{key_id}` or `{tenant_id}`; anything else drops all facts. */
  onNotify(payload: string): void {
    this.generation++;
    const change = parseChange(payload);
    if (typeof change.key_id === "string") this.keys.delete(change.key_id);
    else if (typeof change.tenant_id === "string") this.tenants.delete(change.tenant_id);
    else this.dropFacts();
  }

  /** The subscription changed state: what earlier notifications kept fresh may be stale now. */
  onReset(listening: boolean): void {
    this.listening = listening;
    this.generation++;
    this.dropFacts();
  }

  stats(): { proofs: number; keys: number; tenants: number; misses: number; listening: boolean } {
    return {
      proofs: this.proofs.size,
      keys: this.keys.size,
      tenants: this.tenants.size,
      misses: this.misses.size,
      listening: this.listening,
    };
  }

  private dropFacts(): void {
    this.keys.clear();
    this.tenants.clear();
  }

  private ttl(): number {
    return this.listening ? this.opts.factsTtlMs : this.opts.unlistenedTtlMs;
  }
}

function parseChange(payload: string): { key_id?: unknown; tenant_id?: unknown } {
  try {
    const v: unknown = JSON.parse(payload);
    return typeof v === "object" && v !== null ? v : {};
  } catch {
    return {};
  }
}
