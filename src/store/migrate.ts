import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../config.js";
import type { Db, Queryable } from "./db.js";
import { describeMissing, missingServerPrivileges } from "./grants.js";

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
    // Created only when missing: CREATE ... IF NOT EXISTS would need the schema's CREATE right even when
    // the table exists, and `migrate` run as the server's role should say "up to date" when it is.
    const [table] = await q.query<{ present: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
    if (!table?.present) {
      await q.exec(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
      );
    }
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

/** The migrations shipped with this build that the database has not applied. */
export async function pendingMigrations(q: Queryable): Promise<string[]> {
  const [table] = await q.query<{ present: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
  if (!table?.present) return loadMigrations().map((m) => m.name);
  const rows = await q.query<{ version: number }>("SELECT version FROM schema_migrations");
  const done = new Set(rows.map((r) => Number(r.version)));
  return loadMigrations()
    .filter((m) => !done.has(m.version))
    .map((m) => m.name);
}

/** The database's own words for a failure the store wrapped as "internal error". */
export function databaseMessage(err: unknown): string {
  const cause = (err as { cause?: unknown } | null)?.cause;
  const inner = cause instanceof Error ? cause : err;
  return inner instanceof Error ? inner.message : String(inner);
}

const INSUFFICIENT_PRIVILEGE = "42501";
const sqlState = (err: unknown): string | undefined =>
  ((err as { cause?: { code?: unknown } } | null)?.cause?.code as string | undefined) ?? (err as { code?: string } | null)?.code;

/**
 * At server start. Embedded: apply what is pending. PostgreSQL: nothing to do
 * when migrations are current (the server's role needs no DDL rights); else
 * apply them through the migration connection (MIGRATION_DATABASE_URL, the
 * owner), and when that role may not change the schema, refuse to start
 * with what to run instead.
 */
export async function migrateAtStart(db: Db, openMigrator: () => Promise<Db>): Promise<string[]> {
  if (db.engine === "pglite") return migrate(db);
  const pending = await pendingMigrations(db).catch(async (err: unknown) => {
    if (sqlState(err) === INSUFFICIENT_PRIVILEGE) await assertServerPrivileges(db, err);
    throw err;
  });
  if (pending.length === 0) {
    await assertServerPrivileges(db);
    return [];
  }
  const migrator = await openMigrator();
  try {
    const applied = await migrate(migrator);
    await assertServerPrivileges(db);
    return applied;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    if (sqlState(err) === INSUFFICIENT_PRIVILEGE) {
      throw new ConfigError(
        `${pending.length} database migration(s) pending (${pending.join(", ")}) and this role may not apply them ` +
          `(${databaseMessage(err)}).\n  Run \`tenant-registry migrate\` as the schema owner ` +
          "(MIGRATION_DATABASE_URL, or DATABASE_URL of the owner), then start the server again.",
      );
    }
    throw new Error(`database migration failed: ${databaseMessage(err)}`);
  } finally {
    await migrator.close();
  }
}

/**
 * PostgreSQL: refuse to start, naming each missing privilege and the command
 * that grants it, when the server's role cannot read or write its tables
 * (a runtime role nobody ran `migrate --grant` for). `cause`: a permission
 * error already met, reported as is when the catalog cannot say more.
 */
export async function assertServerPrivileges(db: Db, cause?: unknown): Promise<void> {
  const [me] = await db.query<{ role: string }>("SELECT current_user AS role");
  const role = me?.role ?? "ROLE";
  const missing = await missingServerPrivileges(db);
  if (missing.length === 0 && cause === undefined) return;
  const what = missing.length > 0 ? describeMissing(missing) : [databaseMessage(cause)];
  throw new ConfigError(
    `the database role "${role}" lacks privileges the server needs:\n${what.map((line) => `    ${line}\n`).join("")}` +
      `  Run \`tenant-registry migrate --grant ${role}\` as the schema owner ` +
      "(MIGRATION_DATABASE_URL, or DATABASE_URL of the owner), then start the server again.",
  );
}

/** True when every migration shipped with this build has been applied. */
export async function migrationsCurrent(q: Queryable): Promise<boolean> {
  const rows = await q.query<{ n: number }>("SELECT count(*)::int AS n FROM schema_migrations WHERE version = ANY($1::int[])", [
    loadMigrations().map((m) => m.version),
  ]);
  return rows[0]?.n === loadMigrations().length;
}
