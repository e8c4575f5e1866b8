import type { Db } from "../../store/db.js";
import { managedTokensTouch } from "../../store/managed-tokens.js";
import { ACCESS_CHANNEL } from "../../store/notify.js";
import { LAST_USED_DEFAULTS, LastUsedCoalescer, type LastUsedOptions } from "../last-used.js";
import type { Log } from "../log.js";
import { ManagedTokenLeg, TOKEN_CACHE_DEFAULTS, type TokenCacheOptions } from "./token-leg.js";

export interface AccessServicesOptions {
  cache?: Partial<TokenCacheOptions>;
  lastUsed?: Partial<LastUsedOptions>;
}

/**
 * What authentication needs beyond the bootstrap tokens, with one
 * lifecycle: start with the app, close before the store. One subscription
 * to the access channel feeds every cache of credentials (managed tokens
 * now; sessions and people hear the same channel).
 */
export interface AccessServices {
  tokens: ManagedTokenLeg;
  lastUsed: LastUsedCoalescer;
  /** Stop listening, write pending last_used_at. */
  close(): Promise<void>;
}

export async function startAccessServices(db: Db, log: Log, opts: AccessServicesOptions = {}): Promise<AccessServices> {
  const lastUsed = new LastUsedCoalescer(
    db,
    log,
    { ...LAST_USED_DEFAULTS, ...opts.lastUsed },
    { touch: managedTokensTouch, what: "managed token" },
  );
  const tokens = new ManagedTokenLeg(db, lastUsed, { ...TOKEN_CACHE_DEFAULTS, ...opts.cache });
  const unlisten = await db.listen(
    ACCESS_CHANNEL,
    (payload) => tokens.onNotify(payload),
    (listening) => {
      tokens.onReset(listening);
      if (!listening) log.warn("access cache: change notifications interrupted; cached tokens expire within a second until they resume");
    },
  );
  lastUsed.start();
  let closing: Promise<void> | undefined;
  return {
    tokens,
    lastUsed,
    close() {
      closing ??= (async () => {
        await unlisten();
        await lastUsed.stop();
      })();
      return closing;
    },
  };
}
