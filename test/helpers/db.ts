import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import pg from "pg";
import { inject } from "vitest";
import type { Db, Engine } from "../../src/store/db.js";
import { migrate } from "../../src/store/migrate.js";
import { openPg } from "../../src/store/pg.js";
import { openPglite } from "../../src/store/pglite.js";

/** PGlite always; PostgreSQL too when TEST_DATABASE_URL is set (CI sets it). */
export const ENGINES: Engine[] = process.env.TEST_DATABASE_URL ? ["pglite", "postgres"] : ["pglite"];

export interface TestDb {
  engine: Engine;
  db: Db;
  /** PostgreSQL only: the URL of this test's own database (for a second client). */
  url: string | undefined;
  /** Another client on the same data (PostgreSQL: a second pool; PGlite: the same engine). */
  connect(): Promise<Db>;
  close(): Promise<void>;
}

const noop = () => {};

/**
 * A store of its own for one test file: PGlite from the migrated snapshot,
 * or a fresh PostgreSQL database created next to TEST_DATABASE_URL's and
 * dropped afterwards.
 */
export async function openTestDb(engine: Engine): Promise<TestDb> {
  if (engine === "pglite") {
    const snapshot = new Blob([readFileSync(inject("pgliteSnapshot"))]);
    const db = await openPglite({ dataDir: null, loadDataDir: snapshot });
    return { engine, db, url: undefined, connect: async () => db, close: () => db.close() };
  }
  const base = process.env.TEST_DATABASE_URL;
  if (!base) throw new Error("TEST_DATABASE_URL is not set");
  const name = `tr_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  const others: Db[] = [];
  const open = () => openPg({ url: url.toString(), poolSize: 10, timeoutMs: 10_000, onError: noop });
  const db = open();
  await migrate(db);
  return {
    engine,
    db,
    url: url.toString(),
    connect: async () => {
      const d = open();
      others.push(d);
      return d;
    },
    close: async () => {
      await Promise.all([db, ...others].map((d) => d.close().catch(noop)));
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
