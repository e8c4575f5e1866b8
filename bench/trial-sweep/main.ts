/**
 * How fast the trial sweep stores ended trials, alone and with a second
 * instance sweeping at once, and proof that every trial still gets exactly
 * one event. PGlite in memory always; PostgreSQL too when BENCH_DATABASE_URL
 * (or TEST_DATABASE_URL) is set, in a database created and dropped here.
 *
 *   npm run bench trial-sweep
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench trial-sweep
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { loadCatalogFile } from "../../src/catalog-file.js";
import { syncCatalog } from "../../src/domain/catalog.js";
import { sweepExpiredTrials } from "../../src/domain/trials.js";
import type { Db } from "../../src/store/db.js";
import { migrate } from "../../src/store/migrate.js";
import { openPg } from "../../src/store/pg.js";
import { openPglite } from "../../src/store/pglite.js";

const TRIALS = Number(process.env.BENCH_TRIALS ?? 5000);

/** N tenants, each with one analytics trial that ended a minute ago. */
async function seed(db: Db, tag: string): Promise<void> {
  await db.query(
    `WITH t AS (INSERT INTO tenants (slug, name) SELECT $1 || '-' || g, 'Bench' FROM generate_series(1, $2::int) g RETURNING id)
     INSERT INTO entitlements (tenant_id, product, status, trial_started_at, trial_ends_at)
     SELECT id, 'analytics', 'trial', now() - interval '14 days 1 minute', now() - interval '1 minute' FROM t`,
    [tag, TRIALS],
  );
}

async function events(db: Db): Promise<{ total: number; distinct: number }> {
  const rows = await db.query<{ total: number; distinct: number }>(
    `SELECT count(*)::int AS total, count(DISTINCT tenant_id)::int AS distinct FROM audit_events WHERE action = 'entitlement.trial_expired'`,
  );
  return rows[0] ?? { total: 0, distinct: 0 };
}

async function run(label: string, db: Db, second: Db): Promise<void> {
  await migrate(db);
  await db.tx((q) => syncCatalog(q, loadCatalogFile()));

  await seed(db, "one");
  let t0 = performance.now();
  const alone = await sweepExpiredTrials(db, { maxBatches: 1000 });
  const oneMs = performance.now() - t0;

  await seed(db, "two");
  t0 = performance.now();
  const both = await Promise.all([sweepExpiredTrials(db, { maxBatches: 1000 }), sweepExpiredTrials(second, { maxBatches: 1000 })]);
  const twoMs = performance.now() - t0;

  const e = await events(db);
  const ok = alone === TRIALS && both[0] + both[1] === TRIALS && e.total === 2 * TRIALS && e.distinct === 2 * TRIALS;
  const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);
  process.stdout.write(
    `${label}: ${TRIALS} ended trials\n` +
      `  one sweeper:  ${oneMs.toFixed(0)} ms, ${rate(TRIALS, oneMs)} trials/s\n` +
      `  two at once:  ${twoMs.toFixed(0)} ms, ${rate(TRIALS, twoMs)} trials/s (split ${both[0]} + ${both[1]}), ` +
      `ratio two/one ${(oneMs / twoMs).toFixed(2)}\n` +
      `  events: ${e.total} for ${e.distinct} trials -> ${ok ? "exactly once" : "WRONG"}\n`,
  );
  if (!ok) process.exitCode = 1;
}

const lite = await openPglite({ dataDir: null });
try {
  await run("pglite (one connection: the second sweeper queues)", lite, lite);
} finally {
  await lite.close();
}

const base = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
if (base) {
  const name = `tr_bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  const open = () => openPg({ url: url.toString(), poolSize: 4, timeoutMs: 30_000, onError: () => {} });
  const a = open();
  const b = open();
  try {
    await run("postgres (two pools, as two instances)", a, b);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}
