import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { migrate } from "../../src/store/migrate.js";
import { openPglite } from "../../src/store/pglite.js";
import { compileForTests } from "./compiled.js";

declare module "vitest" {
  export interface ProvidedContext {
    pgliteSnapshot: string;
    pgliteDataDir: string;
  }
}

/**
 * initdb + migrations once per run; every test file then loads this data
 * dir (~0.5 s) instead of paying initdb (~3 s) for its own engine.
 */
export async function setup(project: TestProject): Promise<() => void> {
  // Spawned servers and CLI runs start from plain JavaScript (test/helpers/compiled.ts).
  compileForTests();
  const dir = mkdtempSync(join(tmpdir(), "tr-snapshot-"));
  const db = await openPglite({ dataDir: null });
  await migrate(db);
  const blob = await db.dumpDataDir();
  await db.close();
  const file = join(dir, "snapshot.tar");
  writeFileSync(file, Buffer.from(await blob.arrayBuffer()));
  project.provide("pgliteSnapshot", file);
  // The same, as a data directory on disk, for spawned servers that need not pay initdb (migratedDataDir()).
  const dataDir = join(dir, "data");
  await (await openPglite({ dataDir, loadDataDir: blob })).close();
  project.provide("pgliteDataDir", dataDir);
  return () => rmSync(dir, { recursive: true, force: true });
}
