import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { PGlite, types } from "@electric-sql/pglite";
import { type DataDirLock, lockDataDir } from "./data-dir-lock.js";
import type { Db, Queryable, Row } from "./db.js";
import { translateDbError } from "./errors.js";
import { parseTimestamptz } from "./timestamptz.js";

export interface PgliteOptions {
  /** A directory to persist in, or null for memory. */
  dataDir: string | null;
  /** A dumped data dir to start from (tests: skips initdb). */
  loadDataDir?: Blob;
}

// PGlite returns int8 as number or BigInt; pg as string. Make it a string here too.
// timestamptz: PGlite's own parser misreads years 0001-0099 (timestamptz.ts).
const parsers = { [types.INT8]: (v: string) => v, [types.TIMESTAMPTZ]: parseTimestamptz };

interface PgliteLike {
  query<T>(text: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(sql: string): Promise<unknown>;
}

function wrap(conn: PgliteLike): Queryable {
  return {
    async query<R extends Row>(text: string, values?: readonly unknown[]) {
      try {
        const res = await conn.query<R>(text, values as unknown[] | undefined);
        return res.rows;
      } catch (err) {
        throw translateDbError(err);
      }
    },
    async exec(sql: string) {
      try {
        await conn.exec(sql);
      } catch (err) {
        throw translateDbError(err);
      }
    },
  };
}

export interface PgliteDb extends Db {
  /** The data dir as a tarball; tests load it instead of running initdb per file. */
  dumpDataDir(): Promise<Blob>;
}

/**
 * The data dir is the owner's alone (0700): PGlite creates its files 0666
 * whatever the umask, so the directory's mode is what protects them.
 */
function prepareDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    chmodSync(dir, 0o700);
  } catch {
    // Not ours to change (another owner): the lock and PGlite then fail or work as the file system allows.
  }
}

/**
 * Memory settings for the embedded engine (docs/shipping.md has the
 * figures). PostgreSQL's default 128 MB of shared buffers lives inside
 * PGlite's WebAssembly memory, which never shrinks; a registry's working set
 * is a few MB, so 16 MB holds it with room to spare.
 */
const MEMORY_PARAMS = ["-c", "shared_buffers=16MB", "-c", "maintenance_work_mem=16MB"];

/**
 * initdb grows the WebAssembly memory to ~600 MB, and a process keeps it
 * after initdb is done. Creating a new data directory in a short-lived child
 * process leaves the server holding only what reopening it costs.
 */
async function initDataDir(dataDir: string): Promise<void> {
  const pglite = pathToFileURL(createRequire(import.meta.url).resolve("@electric-sql/pglite")).href;
  const code = `const { PGlite } = await import(${JSON.stringify(pglite)}); await (await PGlite.create({ dataDir: process.env.PGLITE_INIT_DIR })).close();`;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", code], {
      env: { ...process.env, PGLITE_INIT_DIR: dataDir },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`creating the embedded database in ${dataDir} failed: ${stderr}`)),
    );
  });
}

/**
 * Open the embedded store; with a data dir, only if no other process holds
 * it (data-dir-lock.ts). A new data dir is created under the lock.
 */
export async function openPglite(opts: PgliteOptions): Promise<PgliteDb> {
  let lock: DataDirLock | undefined;
  let pglite: PGlite;
  try {
    if (opts.dataDir) {
      prepareDataDir(opts.dataDir);
      lock = await lockDataDir(opts.dataDir);
      if (!opts.loadDataDir && !existsSync(`${opts.dataDir}/PG_VERSION`)) await initDataDir(opts.dataDir);
    }
    pglite = await PGlite.create({
      ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
      ...(opts.loadDataDir ? { loadDataDir: opts.loadDataDir } : {}),
      startParams: [...PGlite.defaultStartParams, ...MEMORY_PARAMS],
      parsers,
    });
  } catch (err) {
    lock?.release();
    throw err;
  }
  const base = wrap(pglite);
  return {
    engine: "pglite",
    ...base,
    // PGlite has one connection: a transaction holds it, other queries wait.
    tx: (fn) =>
      pglite
        .transaction((tx) => fn(wrap(tx as unknown as PgliteLike)))
        .catch((err: unknown) => {
          throw translateDbError(err);
        }),
    async listen(channel, onMessage, onReset) {
      // In-process: notifications cannot be lost once subscribed, so this is the only reset.
      const unlisten = await pglite.listen(channel, onMessage);
      onReset(true);
      return async () => {
        if (!pglite.closed) await unlisten();
      };
    },
    stats: () => ({ total: 1, idle: 1, waiting: 0 }),
    dumpDataDir: () => pglite.dumpDataDir("none"),
    async close() {
      if (!pglite.closed) await pglite.close();
      lock?.release();
      lock = undefined;
    },
  };
}
