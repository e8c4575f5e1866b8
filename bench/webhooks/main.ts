/**
 * bench/webhooks, on PostgreSQL, in one run:
 * 1. baseline: plain signed POSTs from this process straight to the local
 *    receiver, at the worker's concurrency: what the receiver and the
 *    machine can take;
 * 2. throughput: a burst of audit events committed at once, fanned out and
 *    delivered by one registry instance (its own process) to the receiver;
 *    events per second from commit to the last receipt, as a ratio to the
 *    baseline;
 * 3. lag: events committed one per transaction at 200/s, each one's time
 *    from commit (as the committing client saw it) to receipt, p50/p99.
 * The registry runs against a database this benchmark creates and drops
 * (next to BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { randomBytes } from "node:crypto";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { signedHeaders } from "../../src/domain/webhook-signing.js";
import { migrate } from "../../src/store/migrate.js";
import { openPg } from "../../src/store/pg.js";
import { BENCH_ADMIN_URL, createDatabase } from "../lib/database.js";
import { type Spawned, spawnServer } from "../lib/processes.js";

const BURST = Number(process.env.BENCH_BURST ?? 5000);
const ROUNDS = 3;
const CONCURRENCY = Number(process.env.BENCH_WEBHOOK_CONCURRENCY ?? 8);
const RATE = 200;
const LAG_SECONDS = Number(process.env.BENCH_SECONDS ?? 8);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? Number.NaN;
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The receiver: answers 204 and notes when each webhook-id arrived.
const arrivals = new Map<string, number>();
let received = 0;
const receiver = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    const id = String(req.headers["webhook-id"]);
    if (!arrivals.has(id)) arrivals.set(id, performance.now());
    received++;
    res.writeHead(204).end();
  });
});
await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

const db = await createDatabase(BENCH_ADMIN_URL, "tr_bench_hooks");
let server: Spawned | undefined;
let pool: pg.Pool | undefined;
const cleanup = async () => {
  await server?.stop().catch(() => {});
  await pool?.end().catch(() => {});
  await db.drop();
  receiver.close();
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    cleanup().finally(() => process.exit(130));
  });
}

async function waitForArrivals(n: number, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (received < n) {
    if (Date.now() > end) throw new Error(`only ${received} of ${n} deliveries arrived`);
    await sleep(5);
  }
}

/** N signed POSTs straight to the receiver, CONCURRENCY at a time: events per second. */
async function baseline(n: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const secret = `whsec_${randomBytes(32).toString("base64")}`;
  const body = JSON.stringify({ type: "bench.event", timestamp: new Date().toISOString(), data: { n: 1, padding: "x".repeat(300) } });
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await new Promise<void>((resolve, reject) => {
        const req = request(
          receiverUrl,
          { method: "POST", agent, headers: { ...signedHeaders([secret], `msg_base_${i}`, body) } },
          (res) => {
            res.resume();
            res.on("end", resolve);
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  agent.destroy();
  return n / ((performance.now() - start) / 1000);
}

try {
  const store = openPg({ url: db.url, poolSize: 2, timeoutMs: 60_000, onError: () => {} });
  await migrate(store);
  await store.close();
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  const admin = randomBytes(24).toString("base64url");
  server = await spawnServer("src/cli.ts", ["serve"], {
    DATABASE_URL: db.url,
    REGISTRY_ADMIN_TOKEN: admin,
    WEBHOOK_ALLOW_PRIVATE: "true",
    WEBHOOK_CONCURRENCY: String(CONCURRENCY),
  });
  const created = await fetch(`${server.url}/v1/webhooks`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ url: receiverUrl, events: ["bench.*"] }),
  });
  if (created.status !== 201) throw new Error(`webhook create: ${created.status} ${await created.text()}`);
  say(`registry on PostgreSQL, one instance, ${CONCURRENCY} attempts in flight per endpoint; receiver on loopback`);

  const base: number[] = [];
  const rates: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    base.push(await baseline(BURST));
    const before = received;
    // One transaction: BURST events commit at once, as a batch append would.
    const t0 = performance.now();
    await pool.query(
      `INSERT INTO audit_events (actor_id, action, metadata)
       SELECT 'bench', 'bench.burst', jsonb_build_object('n', g, 'padding', repeat('x', 300)) FROM generate_series(1, $1) g`,
      [BURST],
    );
    await waitForArrivals(before + BURST);
    const rate = BURST / ((performance.now() - t0) / 1000);
    rates.push(rate);
    say(
      `round ${round}: ${fmt(BURST)} events delivered at ${fmt(rate)} events/s; baseline (direct signed POSTs) ${fmt(base[round - 1] ?? 0)}/s`,
    );
  }
  const r = median(rates);
  const b = median(base);
  say(`throughput, median of ${ROUNDS}: ${fmt(r)} events/s per instance = ${fmt(r / b, 2)}x the direct-POST baseline (goal >= 1,000/s)`);

  // Lag at 200 events/s: one event per transaction, committed on a schedule.
  const commits = new Map<string, number>();
  const total = RATE * LAG_SECONDS;
  const startAt = performance.now();
  for (let i = 0; i < total; i++) {
    const due = startAt + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    void pool
      .query<{ id: string }>(
        "INSERT INTO audit_events (actor_id, action, metadata) VALUES ('bench', 'bench.steady', '{}') RETURNING id::text AS id",
      )
      .then((res) => {
        commits.set(`msg_${res.rows[0]?.id}`, performance.now());
      });
  }
  const end = Date.now() + 30_000;
  while ([...commits.keys()].filter((k) => arrivals.has(k)).length < total && Date.now() < end) await sleep(20);
  const lags = [...commits].flatMap(([id, at]) => {
    const got = arrivals.get(id);
    return got === undefined ? [] : [got - at];
  });
  say(
    `lag at ${RATE} events/s for ${LAG_SECONDS} s (${fmt(lags.length)} of ${fmt(total)} delivered): p50 ${fmt(quantile(lags, 0.5), 1)} ms, p99 ${fmt(quantile(lags, 0.99), 1)} ms, max ${fmt(Math.max(...lags), 1)} ms (goal p99 <= 1,000 ms)`,
  );
  say("machine: 2 cores shared with other work; compare the ratio, not the absolute rates");
} finally {
  await cleanup();
}
