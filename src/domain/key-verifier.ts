import DataLoader from "dataloader";
import type { VerifyRequest, VerifyResult } from "../schemas/api-key.js";
import type { Queryable } from "../store/db.js";
import { type KeyCandidate, verifyKeyById, verifyKeysByPrefix, verifyTenant } from "../store/verify.js";
import type { KeyHasher } from "./key-hash.js";
import { KEY_PATTERN, keyDigest, keyPrefix } from "./key-material.js";
import type { LastUsedCoalescer } from "./last-used.js";
import type { Log } from "./log.js";
import type { VerifyCache } from "./verify-cache.js";
import { evaluate, type KeyFacts, refuse, type TenantFacts } from "./verify-rules.js";

/**
 * The verify hot path. A key seen recently is answered from memory: no
 * argon2, no SQL, no write. Otherwise one lookup by prefix and one argon2
 * hash prove the key, and its facts are cached until a change notification
 * (or their TTL) drops them. Concurrent misses for the same key, key id or
 * tenant share one load.
 *
 * A well-formed key whose prefix matches no row is refused after that one
 * indexed read, without a hash: the prefix is shown in key lists, so
 * learning that it exists gives nothing away, and it keeps a flood of
 * random keys from costing 15 ms of CPU each. Those reads are batched: the
 * prefixes asked within LOOKUP_WINDOW_MS share one query, so a flood of
 * distinct keys costs the database a few hundred queries a second at most,
 * and its requests wait (idle) rather than compete with cached traffic.
 */
const LOOKUP_WINDOW_MS = 2;
const LOOKUP_BATCH = 256;

export class KeyVerifier {
  private readonly byPrefix: DataLoader<string, KeyCandidate | null>;
  private readonly provingKeys = new Map<string, Flight<string | null>>();
  private readonly loadingKeys = new Map<string, Flight<KeyFacts | null>>();
  private readonly loadingTenants = new Map<string, Flight<TenantFacts | null>>();

  constructor(
    private readonly db: Queryable,
    private readonly hasher: KeyHasher,
    private readonly cache: VerifyCache,
    private readonly lastUsed: LastUsedCoalescer,
    private readonly log: Log,
  ) {
    this.byPrefix = new DataLoader(
      async (prefixes) => {
        const found = await verifyKeysByPrefix(this.db, prefixes);
        return prefixes.map((p) => found.get(p) ?? null);
      },
      { cache: false, maxBatchSize: LOOKUP_BATCH, batchScheduleFn: (run) => setTimeout(run, LOOKUP_WINDOW_MS) },
    );
  }

  /** Verifies answered from memory alone (no argon2, no SQL) and the rest, for metrics. */
  readonly lookups = { cached: 0, loaded: 0 };

  /**
   * The answer. A key whose facts are all in memory is answered at once,
   * with no promise (the hot path); otherwise the answer's promise, after
   * SQL and perhaps argon2. Answers are shared, frozen objects: the same
   * refusal per reason, the same valid answer per loaded key.
   */
  verify(ask: VerifyRequest): VerifyResult | Promise<VerifyResult> {
    if (!KEY_PATTERN.test(ask.key)) return refuse("malformed");
    const digest = keyDigest(ask.key);
    if (this.cache.isMiss(digest)) {
      this.lookups.cached++;
      return refuse("not_found");
    }
    const keyId = this.cache.proofOf(digest);
    const key = keyId === undefined ? undefined : this.cache.key(keyId);
    const tenant = key === undefined ? undefined : this.cache.tenant(key.tenant_id);
    if (key === undefined || tenant === undefined) return this.load(ask, digest, keyId, key);
    this.lookups.cached++;
    return this.answer(key, tenant, ask);
  }

  private answer(key: KeyFacts, tenant: TenantFacts, ask: VerifyRequest): VerifyResult {
    const result = evaluate(key, tenant, ask, Date.now());
    if (result.valid) this.lastUsed.touch(key.id);
    return result;
  }

  /** What memory lacked, loaded: the proof (argon2), then the key's facts, then its tenant's, each shared with concurrent callers. */
  private async load(
    ask: VerifyRequest,
    digest: string,
    proven: string | undefined,
    cachedKey: KeyFacts | undefined,
  ): Promise<VerifyResult> {
    const answer = await this.loadAnswer(ask, digest, proven, cachedKey);
    // Counted once answered: a verify that failed (503) counts as neither cached nor loaded.
    this.lookups.loaded++;
    return answer;
  }

  private async loadAnswer(
    ask: VerifyRequest,
    digest: string,
    proven: string | undefined,
    cachedKey: KeyFacts | undefined,
  ): Promise<VerifyResult> {
    const keyId = proven ?? (await shared(this.provingKeys, digest, -1, () => this.prove(ask.key, digest)));
    if (keyId === null) return refuse("not_found");
    let key: KeyFacts | null | undefined = cachedKey ?? this.cache.key(keyId);
    if (key === undefined) key = await shared(this.loadingKeys, keyId, this.cache.epoch, () => this.loadKey(keyId));
    if (key === null) {
      this.cache.forgetProof(digest);
      return refuse("not_found");
    }
    const tenantId = key.tenant_id;
    let tenant: TenantFacts | null | undefined = this.cache.tenant(tenantId);
    if (tenant === undefined) tenant = await shared(this.loadingTenants, tenantId, this.cache.epoch, () => this.loadTenant(tenantId));
    if (tenant === null) return refuse("not_found");
    return this.answer(key, tenant, ask);
  }

  private async prove(plaintext: string, digest: string): Promise<string | null> {
    const epoch = this.cache.epoch;
    const found = await this.byPrefix.load(keyPrefix(plaintext));
    if (!found) {
      this.cache.addMiss(digest);
      return null;
    }
    // The key's tenant is the hash's group: a flood of wrong secrets on its prefix uses that tenant's turns only.
    const check = await this.hasher.check(plaintext, found.hash, `tenant:${found.facts.tenant_id}`);
    if (check === "unknown_scheme") {
      // Not cached as a miss: it is the registry's fault, and a fix (a new scheme) should take effect at once.
      this.log.error({ key_id: found.facts.id }, "API key hash has an unknown scheme tag; the key cannot verify");
      return null;
    }
    if (check === "mismatch") {
      this.cache.addMiss(digest);
      return null;
    }
    this.cache.prove(digest, found.facts.id);
    this.cache.putKey(found.facts, epoch);
    return found.facts.id;
  }

  private async loadKey(id: string): Promise<KeyFacts | null> {
    const epoch = this.cache.epoch;
    const facts = await verifyKeyById(this.db, id);
    if (facts) this.cache.putKey(facts, epoch);
    return facts;
  }

  private async loadTenant(id: string): Promise<TenantFacts | null> {
    const epoch = this.cache.epoch;
    const facts = await verifyTenant(this.db, id);
    if (facts) this.cache.putTenant(facts, epoch);
    return facts;
  }
}

interface Flight<V> {
  epoch: number;
  promise: Promise<V>;
}

/**
 * Single flight: callers asking for the same thing while it loads share the
 * load — but only a load started in the caller's epoch. A caller that
 * arrives after an invalidation never joins a load that began before it
 * (its SQL may have read the facts the change just replaced): it starts
 * its own, which later callers then share.
 */
function shared<V>(loads: Map<string, Flight<V>>, id: string, epoch: number, load: () => Promise<V>): Promise<V> {
  const current = loads.get(id);
  if (current && current.epoch === epoch) return current.promise;
  const flight: Flight<V> = {
    epoch,
    promise: load().finally(() => {
      if (loads.get(id) === flight) loads.delete(id);
    }),
  };
  loads.set(id, flight);
  return flight.promise;
}
