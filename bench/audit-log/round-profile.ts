/**
 * `npx tsx bench/audit-log/round-profile.ts [events]`: where a sequencer
 * round's time goes. Loads `events` (default 200,000) by SQL into a
 * database of its own, then runs AuditLog rounds in this process and times
 * their parts: reading the settled events, building and hashing leaves,
 * the tree and the writes; then reads every entry as GET
 * /v1/audit/log/entries does. Run under `node --cpu-prof` for a profile.
 */

import pg from "pg";
import pino from "pino";
import { leafOf } from "../../src/domain/audit-log/leaf.js";
import { AuditLog, loadAuditLogIdentity } from "../../src/domain/audit-log/log.js";
import { leafHash } from "../../src/domain/audit-log/merkle.js";
import { auditSettledAfter } from "../../src/store/audit.js";
import { migrate } from "../../src/store/migrate.js";
import { openPg } from "../../src/store/pg.js";
import { loadHistory } from "../audit/setup.js";
import { BENCH_ADMIN_URL, createDatabase } from "../lib/database.js";

const N = Number(process.argv[2] ?? 200_000);
const say = (line: string) => process.stdout.write(`${line}\n`);
const db = await createDatabase(BENCH_ADMIN_URL, "tr_bench_auditlog_round");
const store = openPg({ url: db.url, poolSize: 4, timeoutMs: 600_000, onError: () => {} });
try {
  await migrate(store);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  await loadHistory(pool, 100, N);
  await pool.end();
  const log = new AuditLog(store, await loadAuditLogIdentity(store, { origin: undefined, keyFile: undefined }), pino({ level: "warn" }));
  // The parts, on the first 20,000 events, outside a round.
  let t = performance.now();
  const events = await store.tx((q) => auditSettledAfter(q, "0", 20_000));
  say(`read ${events.length} settled events: ${(performance.now() - t).toFixed(0)} ms`);
  t = performance.now();
  const leaves = events.map(leafOf);
  say(`leafOf (canonicalize): ${(performance.now() - t).toFixed(0)} ms`);
  t = performance.now();
  leaves.map(leafHash);
  say(`leafHash: ${(performance.now() - t).toFixed(0)} ms`);
  let done = 0;
  const t0 = performance.now();
  while (done < N) {
    t = performance.now();
    const n = await log.round();
    done += n;
    if (done <= 60_000) say(`round of ${n}: ${(performance.now() - t).toFixed(0)} ms`);
  }
  say(
    `${N} events sequenced in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${(N / ((performance.now() - t0) / 1000)).toFixed(0)} events/s`,
  );
  // What GET /v1/audit/log/entries does per request of 10,000.
  const t1 = performance.now();
  let bytes = 0;
  for (let start = 0; start < N; start += 10_000) bytes += (await log.entries(start, Math.min(N, start + 10_000))).length;
  const s1 = (performance.now() - t1) / 1000;
  say(`entries: ${N} in ${s1.toFixed(1)} s: ${(N / s1).toFixed(0)} events/s, ${(bytes / N).toFixed(0)} bytes/leaf`);
} finally {
  await store.close();
  await db.drop();
}
