import { LRUCache } from "lru-cache";
import type { Queryable } from "../../store/db.js";
import { type ManagedTokenFacts, managedTokenFindByDigest } from "../../store/managed-tokens.js";
import type { LastUsedCoalescer } from "../last-used.js";
import type { CredentialLeg, Principal } from "./principal.js";
import { TOKEN_PATTERN, tokenDigest } from "./token-secret.js";

export interface TokenCacheOptions {
  maxTokens: number;
  maxMisses: number;
  /** How long a token's facts are trusted while change notifications flow (a backstop for a change that did not notify). */
  factsTtlMs: number;
  /** How long they are trusted while notifications may be lost: "within about a second" still holds. */
  unlistenedTtlMs: number;
  missTtlMs: number;
}

export const TOKEN_CACHE_DEFAULTS: TokenCacheOptions = {
  maxTokens: 10_000,
  maxMisses: 10_000,
  factsTtlMs: 60_000,
  unlistenedTtlMs: 1_000,
  missTtlMs: 60_000,
};

/** What authentication remembers of a managed token, by the digest of its secret. */
interface TokenFacts {
  id: string;
  /** Frozen, one per load: an accepted request allocates nothing for it. */
  principal: Principal;
  revoked: boolean;
  /** Epoch ms of the earlier of its expiry and the end of its rotation's grace; null: neither. */
  endsAt: number | null;
}

const endOf = (f: ManagedTokenFacts): number | null => {
  const ends = [f.expires_at, f.grace_ends_at].filter((d): d is Date => d !== null).map((d) => d.getTime());
  return ends.length === 0 ? null : Math.min(...ends);
};

/**
 * Managed tokens (`rt_…`) as a leg of authentication (http/auth.ts), with
 * the same freshness rules as the verify cache (verify-cache.ts):
 * - a token's facts are cached by the digest of its secret, and dropped
 *   when a change notification names the token (a revoke, a rotation), on
 *   every instance; the instance that made the change hears it at commit;
 * - while the notification channel is not live, facts live at most
 *   `unlistenedTtlMs` (1 s), so a change still acts within about a second;
 * - expiry and the end of a rotation's grace are checked against the clock
 *   on every request: they need no notification;
 * - an unknown digest is remembered (bounded, LRU) so a repeated wrong token
 *   costs no SQL; made-up tokens that never repeat are held off the store
 *   by the per-address failure limiter, which auth.ts consults before it
 *   lets a lookup through;
 * - a fill that raced an invalidation answers its request but is not kept.
 */
export class ManagedTokenLeg implements CredentialLeg {
  private readonly facts: LRUCache<string, TokenFacts>;
  private readonly misses: LRUCache<string, true>;
  /** One store read per digest at a time: a burst after an invalidation shares it. */
  private readonly inflight = new Map<string, Promise<TokenFacts | null>>();
  private listening = false;
  private generation = 0;

  constructor(
    private readonly db: Queryable,
    private readonly lastUsed: LastUsedCoalescer,
    private readonly opts: TokenCacheOptions = TOKEN_CACHE_DEFAULTS,
  ) {
    this.facts = new LRUCache({ max: opts.maxTokens, ttl: opts.factsTtlMs });
    this.misses = new LRUCache({ max: opts.maxMisses, ttl: opts.missTtlMs });
  }

  peek(token: string, now: number): Principal | null | undefined {
    if (!TOKEN_PATTERN.test(token)) return null;
    const digest = tokenDigest(token);
    const f = this.facts.get(digest);
    if (f !== undefined) return this.judge(f, now);
    return this.misses.get(digest) === true ? null : undefined;
  }

  async lookup(token: string, _now: number): Promise<Principal | null> {
    const digest = tokenDigest(token);
    let pending = this.inflight.get(digest);
    if (pending === undefined) {
      pending = this.load(digest).finally(() => this.inflight.delete(digest));
      this.inflight.set(digest, pending);
    }
    const f = await pending;
    // The clock again: the read took time.
    return f === null ? null : this.judge(f, Date.now());
  }

  /**
   * A change notification on the access channel: `{token_id}` drops that
   * token; a change to something else that is no token (a session, a
   * person) leaves tokens alone; anything unrecognised drops every token.
   */
  onNotify(payload: string): void {
    const change = parseChange(payload);
    if (change !== null && typeof change.token_id !== "string" && NOT_TOKENS.some((k) => typeof change[k] === "string")) return;
    this.generation++;
    if (change === null || typeof change.token_id !== "string") {
      this.facts.clear();
      return;
    }
    const id = change.token_id;
    for (const [digest, f] of this.facts.entries()) if (f.id === id) this.facts.delete(digest);
  }

  /** The subscription changed state: what earlier notifications kept fresh may be stale now. */
  onReset(listening: boolean): void {
    this.listening = listening;
    this.generation++;
    this.facts.clear();
  }

  stats(): { tokens: number; misses: number; listening: boolean } {
    return { tokens: this.facts.size, misses: this.misses.size, listening: this.listening };
  }

  private judge(f: TokenFacts, now: number): Principal | null {
    if (f.revoked || (f.endsAt !== null && f.endsAt <= now)) return null;
    this.lastUsed.touch(f.id, now);
    return f.principal;
  }

  private async load(digest: string): Promise<TokenFacts | null> {
    const epoch = this.generation;
    const row = await managedTokenFindByDigest(this.db, digest);
    if (row === null) {
      // No token will ever have this digest (secrets are drawn at random and never change).
      this.misses.set(digest, true);
      return null;
    }
    const endsAt = endOf(row);
    const f: TokenFacts = {
      id: row.id,
      principal: Object.freeze({ kind: "token", id: row.id, name: row.name, role: row.role, expiresAt: endsAt }),
      revoked: row.revoked_at !== null,
      endsAt,
    };
    if (epoch === this.generation) this.facts.set(digest, f, { ttl: this.listening ? this.opts.factsTtlMs : this.opts.unlistenedTtlMs });
    return f;
  }
}

/** Keys of access-channel changes about things other than tokens. */
const NOT_TOKENS = ["session_id", "person_id"] as const;

function parseChange(payload: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(payload);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
