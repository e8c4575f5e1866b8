import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Db, Queryable } from "./db.js";

const DIR = fileURLToPath(new URL("./migrations/", import.meta.url));
/** Any constant; held (transaction-scoped) while migrating so concurrent starts queue. */
const MIGRATION_LOCK = 72_640_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

let cached: Migration[] | undefined;

export function loadMigrations(): Migration[] {
  cached ??= readdirSync(DIR)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 4)), name: f, sql: readFileSync(DIR + f, "utf8") }));
  return cached;
}

async function applied(q: Queryable): Promise<Set<number>> {
  const rows = await q.query<{ version: number }>("SELECT version FROM schema_migrations");
  return new Set(rows.map((r) => r.version));
}

/**
 * Apply every pending migration in one transaction, under an advisory lock
 * so that instances starting together apply each migration exactly once.
 * Returns the names applied.
 */
export async function migrate(db: Db): Promise<string[]> {
  return db.tx(async (q) => {
    await q.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await q.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    );
    const done = await applied(q);
    const names: string[] = [];
    for (const m of loadMigrations()) {
      if (done.has(m.version)) continue;
      await q.exec(m.sql);
      await q.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
      names.push(m.name);
    }
    return names;
  });
}

/** True when every migration shipped with this build has been applied. */
export async function migrationsCurrent(q: Queryable): Promise<boolean> {
  const rows = await q.query<{ n: number }>("SELECT count(*)::int AS n FROM schema_migrations WHERE version = ANY($1::int[])", [
    loadMigrations().map((m) => m.version),
  ]);
  return rows[0]?.n === loadMigrations().length;
}
