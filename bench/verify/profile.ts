/**
 * CPU profile of the cached verify path: the registry on PostgreSQL under
 * `node --cpu-prof`, 50 connections of one cached verify with a static body
 * for 10 s, then SIGINT (the profile is written on exit). Prints the
 * self time by function (top 25) and by area, per request.
 *   npx tsx bench/verify/profile.ts [out-dir]
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import pg from "pg";
import { BENCH_ADMIN_URL, createDatabase } from "../lib/database.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const out = process.argv[2] ?? join(ROOT, ".profiles", String(Date.now()));
if (process.argv[3] === "--summarize") {
  // Re-read a profile written earlier: `profile.ts <dir> --summarize <requests> <seconds>`.
  summarize(Number(process.argv[4]), Number(process.argv[5] ?? 10));
  process.exit(0);
}
mkdirSync(out, { recursive: true });
const admin = randomBytes(24).toString("base64url");
const service = randomBytes(24).toString("base64url");
const port = 20000 + Math.floor(Math.random() * 20000);
const url = `http://127.0.0.1:${port}`;

const db = await createDatabase(BENCH_ADMIN_URL);
const child = spawn(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${out}`, "--import", "tsx", "src/cli.ts", "serve"], {
  cwd: ROOT,
  env: {
    PATH: process.env.PATH ?? "",
    HOST: "127.0.0.1",
    PORT: String(port),
    LOG_LEVEL: "warn",
    DATABASE_URL: db.url,
    REGISTRY_ADMIN_TOKEN: admin,
    REGISTRY_TOKENS: `bench:service:${service}`,
  },
  stdio: ["ignore", "ignore", "inherit"],
});
const exited = new Promise<void>((r) => child.once("exit", () => r()));
try {
  for (let i = 0; ; i++) {
    try {
      await fetch(`${url}/healthz`);
      break;
    } catch {
      if (i > 300) throw new Error("server did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const call = async (path: string, body: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return (await res.json()) as Record<string, unknown>;
  };
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  await c.query("INSERT INTO products (key, name) VALUES ('crm', 'CRM') ON CONFLICT DO NOTHING");
  const tenant = await call("/v1/tenants", { slug: "profile", name: "Profile" });
  await c.query("INSERT INTO entitlements (tenant_id, product, status) VALUES ($1, 'crm', 'active')", [tenant.id]);
  await c.end();
  const key = await call("/v1/api-keys", { tenant_id: tenant.id, name: "p", product: "crm", scopes: ["read"] });
  const body = JSON.stringify({ key: key.key, product: "crm", scope: "read" });
  const opts = {
    url: `${url}/v1/internal/api-keys/verify`,
    method: "POST" as const,
    connections: 50,
    headers: { authorization: `Bearer ${service}`, "content-type": "application/json" },
    body,
  };
  await autocannon({ ...opts, duration: 2 });
  const r = await autocannon({ ...opts, duration: 10 });
  process.stdout.write(
    `profiled run: ${(r.requests.total / r.duration).toFixed(0)} req/s, p99 ${r.latency.p99} ms, ${r.requests.total} requests, non-2xx ${r.non2xx}\n`,
  );
  child.kill("SIGINT");
  await exited;
  summarize(r.requests.total, r.duration);
} finally {
  if (child.exitCode === null) child.kill("SIGKILL");
  await db.drop();
}

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/**
 * The main thread's profile (the largest file; worker threads write their
 * own), counting only samples in the measured run: the `seconds` before
 * the last 0.3 s (start-up, setup and warm-up are left out).
 */
function summarize(requests: number, seconds: number): void {
  const files = readdirSync(out).filter((f) => f.endsWith(".cpuprofile"));
  const file = files.sort((a, b) => readFileSync(join(out, b)).length - readFileSync(join(out, a)).length)[0];
  if (!file) throw new Error(`no profile in ${out}`);
  const prof = JSON.parse(readFileSync(join(out, file), "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const at: number[] = [];
  let t = 0;
  for (const d of prof.timeDeltas) {
    t += d;
    at.push(t);
  }
  const to = t - 300_000;
  const from = to - seconds * 1_000_000;
  const self = new Map<number, number>();
  prof.samples.forEach((id, i) => {
    const when = at[i] ?? 0;
    if (when >= from && when <= to) self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  });
  const byFn = new Map<string, number>();
  const byArea = new Map<string, number>();
  let total = 0;
  for (const n of prof.nodes) {
    const us = self.get(n.id) ?? 0;
    if (us === 0) continue;
    const u = n.callFrame.url.replace(/^file:\/\//, "").replace(ROOT, "");
    const name = `${n.callFrame.functionName || "(anonymous)"} ${u.split("/").slice(-2).join("/")}:${n.callFrame.lineNumber + 1}`;
    byFn.set(name, (byFn.get(name) ?? 0) + us);
    const area = n.callFrame.functionName === "(idle)" ? "idle" : area_(u, n.callFrame.functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
    if (area !== "idle") total += us;
  }
  const line = (label: string, us: number) =>
    `${label.padEnd(70)} ${(us / 1000).toFixed(0).padStart(7)} ms ${(us / requests).toFixed(2).padStart(6)} µs/req`;
  process.stdout.write(
    `\nmain thread busy (not idle) in the measured run: ${(total / 1000).toFixed(0)} ms, ${(total / requests).toFixed(1)} µs per request\n\nby area (top 15):\n`,
  );
  for (const [k, v] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, 15)) process.stdout.write(`${line(k, v)}\n`);
  process.stdout.write("\ntop functions by self time:\n");
  for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 25)) process.stdout.write(`${line(k, v)}\n`);
}

function area_(u: string, fn: string): string {
  if (u.startsWith("src/")) return `registry: ${u.split("/").slice(1, 3).join("/")}`;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (m) return `package: ${m[1]}`;
  if (u.startsWith("node:")) return `node: ${u.slice(5).split("/")[0]}`;
  if (fn === "(garbage collector)") return "garbage collector";
  return `other: ${fn || "(anonymous)"}`;
}
