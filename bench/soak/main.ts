/**
 * Soak: a steady mix of verify, tenant reads, audit appends and admin
 * changes against the real server on PostgreSQL for a few minutes
 * (SOAK_SECONDS, default 180; SOAK_RATE requests/s, default 400), in
 * consecutive windows. Reports per window: throughput, p50/p99, errors and
 * the server's resident memory; then the memory trend and the p99 spread.
 * Loopback only, bounded in time.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { BENCH_ADMIN_URL, createDatabase } from "../lib/database.js";
import { spawnServer } from "../lib/processes.js";

const SECONDS = Number(process.env.SOAK_SECONDS ?? 180);
const RATE = Number(process.env.SOAK_RATE ?? 400);
const WINDOW = 15;

const token = () => randomBytes(24).toString("base64url");
const admin = token();
const service = token();

const rssMiB = (pid: number) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024);

async function api(base: string, who: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${who}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] ?? 0) - mx) * ((ys[i] ?? 0) - my);
    den += ((xs[i] ?? 0) - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const db = await createDatabase(BENCH_ADMIN_URL, "tr_bench_soak");
const server = await spawnServer("src/cli.ts", ["serve"], {
  DATABASE_URL: db.url,
  REGISTRY_ADMIN_TOKEN: admin,
  REGISTRY_TOKENS: `soak:service:${service}`,
});
try {
  const base = server.url;
  const tenant = await api(base, admin, "POST", "/v1/tenants", { slug: "soak", name: "Soak" });
  const tenantId = String(tenant.id);
  await api(base, admin, "POST", `/v1/tenants/${tenantId}/activate`);
  await api(base, admin, "POST", "/v1/entitlements", { tenant_id: tenantId, product: "analytics", status: "active" });
  const key = String(
    (await api(base, admin, "POST", "/v1/api-keys", { tenant_id: tenantId, name: "soak", product: "analytics", scopes: ["events:write"] }))
      .key,
  );

  const json = { "content-type": "application/json" };
  const asService = { authorization: `Bearer ${service}`, ...json };
  const asAdmin = { authorization: `Bearer ${admin}`, ...json };
  const verifyBody = JSON.stringify({ key, product: "analytics", scope: "events:write" });
  let n = 0;
  type Call = { method: string; path: string; headers: Record<string, string>; body?: () => string; check?: (body: string) => boolean };
  const verify: Call = {
    method: "POST",
    path: "/v1/internal/api-keys/verify",
    headers: asService,
    body: () => verifyBody,
    check: (b) => b.startsWith('{"valid":true'),
  };
  // The mix, in order: 3 verifies, 2 tenant reads, 2 audit appends, 1 change, 1 audit read.
  const mix: Call[] = [
    verify,
    { method: "GET", path: `/v1/tenants/${tenantId}`, headers: asService },
    {
      method: "POST",
      path: "/v1/audit",
      headers: asService,
      body: () => JSON.stringify({ action: "soak.event", tenant_id: tenantId, metadata: { n: n++ } }),
    },
    verify,
    { method: "GET", path: "/v1/tenants/by-slug/soak", headers: asService },
    { method: "PATCH", path: `/v1/tenants/${tenantId}`, headers: asAdmin, body: () => JSON.stringify({ sales_owner: `rep-${n++ % 50}` }) },
    verify,
    {
      method: "POST",
      path: "/v1/audit",
      headers: asService,
      body: () => JSON.stringify({ action: "soak.event", tenant_id: tenantId, product: "analytics", metadata: { n: n++ } }),
    },
    { method: "GET", path: `/v1/audit?tenant_id=${tenantId}&limit=100`, headers: { authorization: `Bearer ${admin}` } },
  ];

  /**
   * An open-loop pacer: requests start on schedule whatever the answers do,
   * so a slow server shows up as latency rather than as fewer requests (and
   * arrivals are steady, not bursts per second).
   */
  async function window(seconds: number) {
    const latencies: number[] = [];
    let non2xx = 0;
    let errors = 0;
    let invalid = 0;
    let next = 0;
    const inflight = new Set<Promise<void>>();
    const started = performance.now();
    const interval = 1000 / RATE;
    let due = started;
    while (performance.now() - started < seconds * 1000) {
      const now = performance.now();
      while (due <= now) {
        due += interval;
        const call = mix[next++ % mix.length] as Call;
        const t0 = performance.now();
        const p = fetch(`${base}${call.path}`, { method: call.method, headers: call.headers, ...(call.body ? { body: call.body() } : {}) })
          .then(async (res) => {
            const body = await res.text();
            latencies.push(performance.now() - t0);
            if (res.status >= 300) non2xx++;
            else if (call.check && !call.check(body)) invalid++;
          })
          .catch(() => {
            errors++;
          })
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await Promise.all(inflight);
    latencies.sort((a, b) => a - b);
    const at = (q: number) => Number((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0).toFixed(1));
    return { rps: Math.round(latencies.length / seconds), p50: at(0.5), p99: at(0.99), non2xx, errors, invalid };
  }

  const windows = Math.max(2, Math.round(SECONDS / WINDOW));
  const rows: { window: number; rps: number; p50: number; p99: number; non2xx: number; errors: number; invalid: number; rss: number }[] =
    [];
  process.stdout.write(`soak: ${windows} windows of ${WINDOW}s at ${RATE} req/s, PostgreSQL, server pid ${server.pid}\n`);
  for (let w = 1; w <= windows; w++) {
    const row = { window: w, ...(await window(WINDOW)), rss: rssMiB(server.pid) };
    rows.push(row);
    process.stdout.write(`${JSON.stringify(row)}\n`);
  }

  const steady = rows.slice(1);
  const mibPerMin = slope(
    steady.map((r) => (r.window * WINDOW) / 60),
    steady.map((r) => r.rss),
  );
  const p99s = steady.map((r) => r.p99);
  const totals = rows.reduce((a, r) => ({ non2xx: a.non2xx + r.non2xx, errors: a.errors + r.errors, invalid: a.invalid + r.invalid }), {
    non2xx: 0,
    errors: 0,
    invalid: 0,
  });
  process.stdout.write(
    `\n| window | req/s | p50 ms | p99 ms | non-2xx | errors | RSS MiB |\n|---|---|---|---|---|---|---|\n${rows
      .map((r) => `| ${r.window} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors} | ${r.rss} |`)
      .join("\n")}\n\n` +
      `total: ${totals.non2xx} non-2xx, ${totals.errors} connection errors, ${totals.invalid} verify answers not valid\n` +
      `memory trend after the first window: ${mibPerMin.toFixed(2)} MiB/min (RSS ${steady[0]?.rss} -> ${steady[steady.length - 1]?.rss} MiB)\n` +
      `p99 after the first window: min ${Math.min(...p99s)} ms, max ${Math.max(...p99s)} ms\n`,
  );
  if (totals.non2xx + totals.errors + totals.invalid > 0) process.exitCode = 1;
} finally {
  await server.stop();
  await db.drop();
}
