/**
 * bench/audit, on PostgreSQL, in one run:
 * 1. single-event POST /v1/audit at 20 connections against the ceiling: a
 *    raw `pg` single-row INSERT loop at the same concurrency (into
 *    audit_events itself, and into a copy without the never-skip trigger);
 * 2. POST /v1/audit/batch ingest, events per second;
 * 3. GET /v1/audit latency (p50/p99) for a page of 100 with each filter,
 *    over more than 1,000,000 events.
 * The server runs in its own process on a random loopback port, against a
 * database this benchmark creates and drops (next to BENCH_DATABASE_URL,
 * default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { encodeCursor } from "../../src/http/pagination.js";
import { migrate } from "../../src/store/migrate.js";
import { openPg } from "../../src/store/pg.js";
import { BENCH_ADMIN_URL, createDatabase } from "../lib/database.js";
import { type Spawned, spawnServer } from "../lib/processes.js";
import { getLatency, httpPost, type Latency, sqlLoop } from "./measure.js";
import { ACTIONS, ACTORS, loadHistory, PRODUCTS } from "./setup.js";

const ADMIN_URL = BENCH_ADMIN_URL;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = 3;
const CONNECTIONS = 20;
const BATCH_CONNECTIONS = 4;
const BATCH_SIZE = 1000;
const HISTORY = Number(process.env.BENCH_HISTORY ?? 1_000_000);
const TENANTS = 1000;

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const say = (line: string) => process.stdout.write(`${line}\n`);

const db = await createDatabase(ADMIN_URL, "tr_bench_audit");
let server: Spawned | undefined;
let pool: pg.Pool | undefined;
const cleanup = async () => {
  await server?.stop().catch(() => {});
  await pool?.end().catch(() => {});
  await db.drop();
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    cleanup().finally(() => process.exit(130));
  });
}

try {
  const store = openPg({ url: db.url, poolSize: 2, timeoutMs: 60_000, onError: () => {} });
  await migrate(store);
  await store.close();
  pool = new pg.Pool({ connectionString: db.url, max: CONNECTIONS });

  let t0 = performance.now();
  const tenants = await loadHistory(pool, TENANTS, HISTORY);
  say(`loaded ${fmt(HISTORY)} historical events in ${fmt((performance.now() - t0) / 1000, 1)} s`);

  // The same table and indexes without the trigger: what never-skips costs.
  t0 = performance.now();
  await pool.query("CREATE TABLE bench_plain (LIKE audit_events INCLUDING DEFAULTS)");
  await pool.query("INSERT INTO bench_plain SELECT * FROM audit_events");
  await pool.query(
    "CREATE SEQUENCE bench_plain_seq START 2000000000; ALTER TABLE bench_plain ALTER COLUMN id SET DEFAULT nextval('bench_plain_seq'), ALTER COLUMN occurred_at SET DEFAULT now()",
  );
  const indexes = await pool.query<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE tablename = 'audit_events'");
  for (const { indexdef } of indexes.rows) {
    await pool.query(indexdef.replaceAll("audit_events", "bench_plain"));
  }
  await pool.query(
    "ALTER TABLE bench_plain ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id), ADD FOREIGN KEY (product) REFERENCES products (key)",
  );
  await pool.query("VACUUM ANALYZE bench_plain");
  say(`copied them to bench_plain (no trigger) in ${fmt((performance.now() - t0) / 1000, 1)} s`);

  const tokens = {
    admin: randomBytes(24).toString("base64url"),
    service: randomBytes(24).toString("base64url"),
    auditor: randomBytes(24).toString("base64url"),
  };
  server = await spawnServer("src/cli.ts", ["serve"], {
    DATABASE_URL: db.url,
    REGISTRY_ADMIN_TOKEN: tokens.admin,
    REGISTRY_TOKENS: `bench:service:${tokens.service},reader:auditor:${tokens.auditor}`,
    DATABASE_POOL_SIZE: String(CONNECTIONS),
  });

  const event = () => ({
    action: "bench.single",
    tenant_id: pick(tenants),
    product: pick(PRODUCTS),
    actor_id: "user-7@example.com",
    target_type: "thing",
    target_id: "thing-1",
    metadata: { ip: "10.1.2.3", ua: "bench/1.0", n: 1 },
  });
  // Ready-made rows and bodies: both sides spend their client CPU on the protocol, not on building events.
  const rawRows = Array.from({ length: 1000 }, () => {
    const e = event();
    return [e.tenant_id, e.product, e.actor_id, e.action, e.target_type, e.target_id, JSON.stringify(e.metadata)];
  });
  const rawInsert = (table: string) => {
    let next = 0;
    const text = `INSERT INTO ${table} (tenant_id, product, actor_id, action, target_type, target_id, metadata)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`;
    return (): [string, unknown[]] => [text, rawRows[next++ % rawRows.length] as unknown[]];
  };

  const singleBodies = Array.from({ length: 1000 }, () => JSON.stringify(event()));
  // Interleaved rounds, so drift on a shared machine hits every side alike.
  const raw: number[] = [];
  const rawFenced: number[] = [];
  const posts: number[] = [];
  const postP99: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    raw.push(await sqlLoop(pool, CONNECTIONS, SECONDS, rawInsert("bench_plain")));
    rawFenced.push(await sqlLoop(pool, CONNECTIONS, SECONDS, rawInsert("audit_events")));
    const run = await httpPost(`${server.url}/v1/audit`, tokens.service, singleBodies, CONNECTIONS, SECONDS);
    posts.push(run.rps);
    postP99.push(run.p99);
    say(
      `round ${round + 1}: raw ${fmt(raw[round] ?? 0)}/s, raw+trigger ${fmt(rawFenced[round] ?? 0)}/s, POST ${fmt(run.rps)}/s (${fmt(run.rps / (raw[round] ?? 1), 2)} x)`,
    );
  }

  const batchBody = JSON.stringify({
    events: Array.from({ length: BATCH_SIZE }, (_, i) => ({ ...event(), action: "bench.batch", target_id: `row-${i}` })),
  });
  const batch = await httpPost(`${server.url}/v1/audit/batch`, tokens.service, [batchBody], BATCH_CONNECTIONS, SECONDS);
  const batchEvents = batch.rps * BATCH_SIZE;

  await pool.query("ANALYZE audit_events");
  const total = Number((await pool.query<{ n: string }>("SELECT count(*) AS n FROM audit_events")).rows[0]?.n);
  const last = Number((await pool.query<{ n: string }>("SELECT max(id) AS n FROM audit_events")).rows[0]?.n);
  const start = Date.now() - 30 * 86_400_000;
  const instant = () => new Date(start + Math.random() * 30 * 86_400_000);
  const iso = (d: Date) => encodeURIComponent(d.toISOString());
  const window = (ms: number) => {
    const since = instant();
    return `since=${iso(since)}&until=${iso(new Date(since.getTime() + ms))}`;
  };
  const actor = () => `user-${Math.floor(Math.random() * ACTORS)}@example.com`;
  const action = () => `action.${Math.floor(Math.random() * ACTIONS)}`;
  const filters: [string, () => string][] = [
    ["none (from a random cursor)", () => `cursor=${encodeCursor("audit", [String(Math.floor(Math.random() * last))])}`],
    ["tenant_id", () => `tenant_id=${pick(tenants)}`],
    ["product", () => `product=${pick(PRODUCTS)}`],
    ["actor_id", () => `actor_id=${encodeURIComponent(actor())}`],
    ["action", () => `action=${action()}`],
    ["since", () => `since=${iso(instant())}`],
    ["since + until (1 h)", () => window(3_600_000)],
    ["tenant_id + product", () => `tenant_id=${pick(tenants)}&product=${pick(PRODUCTS)}`],
    ["tenant_id + actor_id", () => `tenant_id=${pick(tenants)}&actor_id=${encodeURIComponent(actor())}`],
    ["tenant_id + action", () => `tenant_id=${pick(tenants)}&action=${action()}`],
    ["tenant_id + since + until (1 day)", () => `tenant_id=${pick(tenants)}&${window(86_400_000)}`],
  ];
  const latencies: [string, Latency][] = [];
  for (const [name, query] of filters) {
    latencies.push([name, await getLatency(server.url, tokens.auditor, () => `/v1/audit?limit=100&${query()}`, 4, 600)]);
  }
  // The noise floor: the same client and server, no database, no payload.
  const control = await getLatency(server.url, tokens.auditor, () => "/healthz", 4, 600);

  // Each round's POST against the raw loop just before it: the median of
  // those ratios shrugs off a round that another process on the machine spoiled.
  const ratio = median(posts.map((p, i) => p / (raw[i] ?? Number.NaN)));
  const worstP99 = Math.max(...latencies.map(([, l]) => l.p99));
  say("");
  say(`audit benchmark: PostgreSQL, ${fmt(total)} events, ${CONNECTIONS} connections, ${ROUNDS} x ${SECONDS} s rounds`);
  say("");
  say("| writes | rate | note |");
  say("|---|---:|---|");
  say(`| raw pg INSERT, no trigger (ceiling) | ${fmt(mean(raw))} rows/s | Pool(${CONNECTIONS}), ${CONNECTIONS} loops |`);
  say(`| raw pg INSERT into audit_events | ${fmt(mean(rawFenced))} rows/s | with the never-skip trigger |`);
  say(`| POST /v1/audit | ${fmt(mean(posts))} req/s | ${fmt(ratio, 2)} x ceiling (median of rounds); p99 ${fmt(mean(postP99), 1)} ms |`);
  say(
    `| POST /v1/audit/batch (${BATCH_SIZE}/request) | ${fmt(batchEvents)} events/s | ${BATCH_CONNECTIONS} connections; p99 ${fmt(batch.p99)} ms |`,
  );
  say("");
  say(`| GET /v1/audit, page of 100, filter | p50 ms | p99 ms | requests | events/page |`);
  say("|---|---:|---:|---:|---:|");
  for (const [name, l] of latencies) say(`| ${name} | ${fmt(l.p50, 2)} | ${fmt(l.p99, 2)} | ${l.requests} | ${fmt(l.meanEvents, 0)} |`);
  say(`| (control: GET /healthz, no database) | ${fmt(control.p50, 2)} | ${fmt(control.p99, 2)} | ${control.requests} | - |`);
  say("");
  const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
  say(`target single POST >= 0.5 x raw INSERT: ${fmt(ratio, 2)} -> ${verdict(ratio >= 0.5)}`);
  say(`target batch >= 20,000 events/s: ${fmt(batchEvents)} -> ${verdict(batchEvents >= 20_000)}`);
  say(`target filtered page p99 <= 20 ms: worst ${fmt(worstP99, 2)} ms -> ${verdict(worstP99 <= 20)}`);
} finally {
  await cleanup();
}
