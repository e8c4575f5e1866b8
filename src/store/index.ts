import type { Config } from "../config.js";
import type { Db } from "./db.js";
import { openPg } from "./pg.js";
import { openPglite } from "./pglite.js";

export type { Db, Queryable } from "./db.js";

/** The store the settings name: PostgreSQL when DATABASE_URL is a URL, else embedded PGlite. */
export async function openStore(config: Config, onError: (err: Error) => void): Promise<Db> {
  if (config.store.engine === "postgres") {
    return openPg({ url: config.store.url, poolSize: config.poolSize, timeoutMs: config.dbTimeoutMs, onError });
  }
  return openPglite({ dataDir: config.store.dataDir });
}

/**
 * The store migrations run against: on PostgreSQL a single connection as the
 * schema owner (MIGRATION_DATABASE_URL, default DATABASE_URL) with the
 * migration timeouts (no statement limit by default, a bounded lock wait);
 * embedded, the store itself.
 */
export async function openMigrationStore(config: Config, onError: (err: Error) => void): Promise<Db> {
  if (config.store.engine === "postgres") {
    return openPg({
      url: config.migrationUrl ?? config.store.url,
      poolSize: 1,
      timeoutMs: config.dbTimeoutMs,
      statementTimeoutMs: config.migrationStatementTimeoutMs,
      lockTimeoutMs: config.migrationLockTimeoutMs,
      onError,
    });
  }
  return openStore(config, onError);
}
