/**
 * `npm run bench startup`: what shipping compiled JavaScript and the
 * embedded memory settings buy, as ratios against baselines measured in the
 * same run (median of ROUNDS):
 *
 * - a CLI call (`tenant-registry token`): bare `node -e 0`, the sources
 *   through tsx (how the CLI ran before), and bin/tenant-registry.js (dist/);
 * - server ready time and idle RSS, sources through tsx vs dist/, on the
 *   embedded store (a new data directory, and reopening it) and PostgreSQL;
 * - the embedded engine alone: PGlite's defaults vs the registry's settings,
 *   reopening one data directory.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BENCH_ADMIN_URL, createDatabase } from "../lib/database.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const IDLE_MS = 3000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

function timeCall(args: string[]): number {
  const t = process.hrtime.bigint();
  const res = spawnSync(process.execPath, args, { cwd: ROOT, stdio: "ignore" });
  if (res.status !== 0) throw new Error(`${args.join(" ")} exited ${res.status}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

const rssMiB = (pid: number) => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

/** Start the server, time it to its ready log line, let it idle, read its RSS, stop it. */
async function serverRun(args: string[], env: Record<string, string>): Promise<{ readyMs: number; rss: number }> {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const readyMs = await new Promise<number>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes('"msg":"tenant-registry ready"')) resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
    child.on("exit", (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const rss = rssMiB(child.pid ?? 0);
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
  return { readyMs, rss };
}

const row = (name: string, value: number, unit: string, base?: number) =>
  process.stdout.write(
    `  ${name.padEnd(46)} ${value.toFixed(unit === "ms" ? 0 : 0).padStart(7)} ${unit}${base ? `  (${(value / base).toFixed(2)}x)` : ""}\n`,
  );

const SOURCE = ["--import", "tsx", "src/cli.ts"];
const BUILT = ["bin/tenant-registry.js"];
// Compile first, outside the timings.
spawnSync(process.execPath, [...BUILT, "--version"], { cwd: ROOT, stdio: "inherit" });

process.stdout.write(`CLI call, tenant-registry token (median of ${ROUNDS}):\n`);
const cli = { bare: [] as number[], source: [] as number[], built: [] as number[] };
for (let i = 0; i < ROUNDS; i++) {
  cli.bare.push(timeCall(["-e", "0"]));
  cli.source.push(timeCall([...SOURCE, "token"]));
  cli.built.push(timeCall([...BUILT, "token"]));
}
row("node -e 0 (baseline)", median(cli.bare), "ms");
row("sources through tsx (before)", median(cli.source), "ms", median(cli.bare));
row("bin/tenant-registry.js, dist/ (after)", median(cli.built), "ms", median(cli.bare));

const token = "bench-admin-token-0123456789";
async function servers(label: string, env: () => Promise<{ env: Record<string, string>; done: () => Promise<void> }>) {
  const res: Record<string, { readyMs: number[]; rss: number[] }> = { source: { readyMs: [], rss: [] }, built: { readyMs: [], rss: [] } };
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, args] of [
      ["source", SOURCE],
      ["built", BUILT],
    ] as const) {
      const e = await env();
      try {
        const r = await serverRun([...args, "serve"], e.env);
        res[name]?.readyMs.push(r.readyMs);
        res[name]?.rss.push(r.rss);
      } finally {
        await e.done();
      }
    }
  }
  process.stdout.write(`${label}:\n`);
  const s = res.source ?? { readyMs: [], rss: [] };
  const b = res.built ?? { readyMs: [], rss: [] };
  row("ready, sources through tsx", median(s.readyMs), "ms");
  row("ready, dist/", median(b.readyMs), "ms", median(s.readyMs));
  row("idle RSS, sources through tsx", median(s.rss), "MiB");
  row("idle RSS, dist/", median(b.rss), "MiB", median(s.rss));
}

await servers("Embedded, new data directory (first start)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tr-bench-start-"));
  return { env: { DATA_DIR: dir }, done: async () => rmSync(dir, { recursive: true, force: true }) };
});
const kept = mkdtempSync(join(tmpdir(), "tr-bench-kept-"));
await serverRun([...BUILT, "serve"], { DATA_DIR: kept });
await servers("Embedded, existing data directory", async () => ({ env: { DATA_DIR: kept }, done: async () => {} }));
await servers("PostgreSQL, migrated database", async () => {
  const db = await createDatabase(BENCH_ADMIN_URL, "tr_bench_start");
  spawnSync(process.execPath, [...BUILT, "migrate"], { cwd: ROOT, env: { ...process.env, DATABASE_URL: db.url }, stdio: "ignore" });
  return { env: { DATABASE_URL: db.url, REGISTRY_ADMIN_TOKEN: token }, done: db.drop };
});

// The embedded engine alone, in a fresh process each: PGlite's defaults vs the registry's settings.
const probe = (settings: "defaults" | "registry") => {
  const code =
    settings === "defaults"
      ? `const { PGlite } = await import("@electric-sql/pglite"); const db = await PGlite.create({ dataDir: process.env.DIR });`
      : `const { openPglite } = await import("./dist/store/pglite.js"); const db = await openPglite({ dataDir: process.env.DIR });`;
  const res = spawnSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `${code} await db.query("select 1"); await new Promise((r) => setTimeout(r, ${IDLE_MS})); console.log(process.memoryUsage().rss);`,
    ],
    { cwd: ROOT, env: { ...process.env, DIR: kept }, encoding: "utf8" },
  );
  return Number(res.stdout.trim()) / 1048576;
};
const engine = { defaults: [] as number[], registry: [] as number[] };
for (let i = 0; i < ROUNDS; i++) {
  engine.defaults.push(probe("defaults"));
  engine.registry.push(probe("registry"));
}
process.stdout.write("PGlite alone, reopening a data directory, idle RSS:\n");
row("PGlite defaults (shared_buffers 128MB)", median(engine.defaults), "MiB");
row("the registry's settings", median(engine.registry), "MiB", median(engine.defaults));
rmSync(kept, { recursive: true, force: true });
