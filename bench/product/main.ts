/**
 * Product benchmark (issue 21, "Verifying at the product costs almost
 * nothing"): a product route on node:http protected by `registryAuth` from
 * the compiled client package, answering from its cache with the registry's
 * change feed live, against the same route unprotected. One run: a real
 * registry on PostgreSQL alongside (a database of its own, created and
 * dropped; BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres),
 * the two products in their own processes, autocannon here with one static
 * request (the key in a header), rounds alternating, median of ROUNDS
 * (default 7) rounds of ROUND_SECONDS (default 5) each.
 * PROFILE=1 also writes a CPU profile of the protected product
 * (node --cpu-prof) to .profiles/product/. Before the load, micro.ts measures
 * the middleware's per-request CPU time in process.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import pg from "pg";
import { BENCH_ADMIN_URL, createDatabase } from "../lib/database.js";
import { type Spawned, spawnServer } from "../lib/processes.js";
import { micro } from "./micro.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const positive = (name: string, fallback: number): number => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, not ${process.env[name]}`);
  return n;
};
const ROUNDS = positive("ROUNDS", 7);
const SECONDS = positive("ROUND_SECONDS", 5);
const CONNECTIONS = 50;
const PROFILE = process.env.PROFILE === "1";

const token = () => randomBytes(24).toString("base64url");
const admin = token();
const service = token();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

interface Round {
  rps: number;
  /** The product's CPU time (all its threads) per answered request, in µs: steadier than req/s on a shared machine. */
  cpuUs: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function load(product: Spawned, key: string, seconds: number): Promise<Round> {
  const cpu0 = product.cpuMs();
  const r = await autocannon({
    url: `${product.url}/invoices`,
    method: "GET",
    connections: CONNECTIONS,
    duration: seconds,
    headers: { "x-api-key": key },
  });
  const cpuUs = ((product.cpuMs() - cpu0) * 1000) / r.requests.total;
  return { rps: r.requests.total / r.duration, cpuUs, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors + r.timeouts };
}

async function api(registry: Spawned, path: string, body: unknown): Promise<Record<string, unknown>> {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(`${registry.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    // The hashing threads may be busy on a loaded machine: retry after Retry-After, as a client would.
    if (res.status === 503 && attempt < 10) {
      await res.text();
      await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get("retry-after") ?? 1)));
      continue;
    }
    if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  }
}

const state = async (product: Spawned) => (await (await fetch(`${product.url}/_state`)).json()) as { live: boolean; verifies: number };

async function main(): Promise<void> {
  const load0 = loadavg();
  // The product imports the compiled client, as a product team would install it.
  const built = spawnSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, "-p", `${ROOT}packages/client/tsconfig.json`], {
    stdio: "inherit",
  });
  if (built.status !== 0) throw new Error("building packages/client failed");

  // The middleware's own per-request cost, in this process, before the load starts.
  const m = await micro();
  process.stdout.write(
    `micro-benchmark, registryAuth's cached path in process (feed live: ${m.live}): ${m.ns.toFixed(0)} ns CPU and ` +
      `~${m.bytes.toFixed(0)} bytes of heap per call; a middleware that only calls next(): ${m.baselineNs.toFixed(0)} ns, ` +
      `~${m.baselineBytes.toFixed(0)} bytes\n`,
  );

  const db = await createDatabase(BENCH_ADMIN_URL);
  const processes: Spawned[] = [];
  try {
    const registry = await spawnServer("src/cli.ts", ["serve"], {
      DATABASE_URL: db.url,
      REGISTRY_ADMIN_TOKEN: admin,
      REGISTRY_TOKENS: `bench:service:${service}`,
    });
    processes.push(registry);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const tenant = await api(registry, "/v1/tenants", { slug: "bench", name: "Bench" });
    await c.query("INSERT INTO products (key, name) VALUES ('crm', 'CRM')");
    await c.query("INSERT INTO entitlements (tenant_id, product, status) VALUES ($1, 'crm', 'active')", [tenant.id]);
    await c.end();
    const key = String(
      (await api(registry, "/v1/api-keys", { tenant_id: tenant.id, name: "bench", product: "crm", scopes: ["read"] })).key,
    );

    const env = { REGISTRY_URL: registry.url, REGISTRY_TOKEN: service };
    if (PROFILE) mkdirSync(`${ROOT}.profiles/product`, { recursive: true });
    const profile = PROFILE ? ["--cpu-prof", "--cpu-prof-dir", `${ROOT}.profiles/product`] : [];
    const guarded = await spawnServer("bench/product/server.ts", [], { ...env, PROTECT: "1" }, profile);
    processes.push(guarded);
    const open = await spawnServer("bench/product/server.ts", [], { ...env, PROTECT: "0" });
    processes.push(open);

    // Warm both (JIT), and let the protected one verify the key once and its change feed go live.
    await load(guarded, key, 3);
    await load(open, key, 3);
    for (let i = 0; i < 50 && !(await state(guarded)).live; i++) await new Promise((r) => setTimeout(r, 100));
    const before = await state(guarded);
    if (!before.live) throw new Error("the product's change feed did not go live");

    const protectedRounds: Round[] = [];
    const openRounds: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // Alternating, starting side swapped each round, so drift in the machine's load hits both alike.
      if (i % 2 === 0) {
        protectedRounds.push(await load(guarded, key, SECONDS));
        openRounds.push(await load(open, key, SECONDS));
      } else {
        openRounds.push(await load(open, key, SECONDS));
        protectedRounds.push(await load(guarded, key, SECONDS));
      }
    }
    const after = await state(guarded);

    const a = median(protectedRounds.map((r) => r.rps));
    const b = median(openRounds.map((r) => r.rps));
    const each = (rs: Round[]) => rs.map((r) => r.rps.toFixed(0)).join(", ");
    const cpuA = median(protectedRounds.map((r) => r.cpuUs));
    const cpuB = median(openRounds.map((r) => r.cpuUs));
    const bad = [...protectedRounds, ...openRounds].reduce((n, r) => n + r.non2xx + r.errors, 0);
    const load1 = loadavg();
    process.stdout.write(
      `machine: ${availableParallelism()} CPUs, load average ${load0.map((l) => l.toFixed(2)).join(" ")} at start, ` +
        `${load1.map((l) => l.toFixed(2)).join(" ")} at end; autocannon -c ${CONNECTIONS}, ${ROUNDS} x ${SECONDS} s rounds each, alternating\n` +
        `protected (registryAuth, cached, feed live): ${each(protectedRounds)} req/s, p99 ${median(protectedRounds.map((r) => r.p99))} ms\n` +
        `unprotected (same route):                    ${each(openRounds)} req/s, p99 ${median(openRounds.map((r) => r.p99))} ms\n` +
        `verify calls to the registry during the rounds: ${after.verifies - before.verifies}; feed live at the end: ${after.live}; ` +
        `non-2xx or errors: ${bad}\n` +
        `product CPU per request, median: ${cpuA.toFixed(1)} vs ${cpuB.toFixed(1)} µs (unprotected/protected = ${(cpuB / cpuA).toFixed(3)})\n` +
        `median: ${a.toFixed(0)} vs ${b.toFixed(0)} req/s = ${(a / b).toFixed(3)} x unprotected (target >= 0.95)\n`,
    );
  } finally {
    for (const p of processes.reverse()) await p.stop();
    await db.drop();
  }
}

await main();
