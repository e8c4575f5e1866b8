import type { Db } from "../store/db.js";
import { VERIFY_CHANNEL } from "../store/notify.js";
import { Argon2Pool } from "./argon2-pool.js";
import { createKeyHasher, type KeyHasher } from "./key-hash.js";
import { KeyVerifier } from "./key-verifier.js";
import { LAST_USED_DEFAULTS, LastUsedCoalescer, type LastUsedOptions } from "./last-used.js";
import type { Log } from "./log.js";
import { CACHE_DEFAULTS, VerifyCache, type VerifyCacheOptions } from "./verify-cache.js";

export interface KeyServicesOptions {
  argon2Threads: number;
  argon2Queue: number;
  /** How long a hash may wait for a thread before its caller gets 503. */
  argon2MaxWaitMs?: number;
  cache?: Partial<VerifyCacheOptions>;
  lastUsed?: Partial<LastUsedOptions>;
}

/** Everything API keys need beyond SQL, with one lifecycle: start with the app, close before the store. */
export interface KeyServices {
  hasher: KeyHasher;
  verifier: KeyVerifier;
  cache: VerifyCache;
  lastUsed: LastUsedCoalescer;
  argon2: Argon2Pool;
  /** Stop listening, write pending last_used_at, stop the hashing threads. */
  close(): Promise<void>;
}

export async function startKeyServices(db: Db, log: Log, opts: KeyServicesOptions): Promise<KeyServices> {
  const argon2 = new Argon2Pool({
    threads: opts.argon2Threads,
    maxQueue: opts.argon2Queue,
    maxWaitMs: opts.argon2MaxWaitMs ?? 2_000,
    onError: (err) => log.error({ err: { message: err.message } }, "argon2 worker thread failed"),
  });
  const hasher = createKeyHasher(argon2);
  const cache = new VerifyCache({ ...CACHE_DEFAULTS, ...opts.cache });
  const lastUsed = new LastUsedCoalescer(db, log, { ...LAST_USED_DEFAULTS, ...opts.lastUsed });
  let unlisten: () => Promise<void>;
  try {
    unlisten = await db.listen(
      VERIFY_CHANNEL,
      (payload) => cache.onNotify(payload),
      (listening) => {
        cache.onReset(listening);
        if (!listening) log.warn("verify cache: change notifications interrupted; cached facts expire within a second until they resume");
      },
    );
  } catch (err) {
    await argon2.close();
    throw err;
  }
  lastUsed.start();
  const verifier = new KeyVerifier(db, hasher, cache, lastUsed, log);
  let closing: Promise<void> | undefined;
  return {
    hasher,
    verifier,
    cache,
    lastUsed,
    argon2,
    close() {
      closing ??= (async () => {
        await unlisten();
        await lastUsed.stop();
        await argon2.close();
      })();
      return closing;
    },
  };
}
