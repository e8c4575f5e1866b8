/**
 * Verify benchmark (issue 4), one run, servers in their own processes,
 * autocannon here, 50 connections:
 *   (a) cached verify through the real server on PostgreSQL, alternating with
 *   (b) a bare Fastify route of the same shape (the ceiling);
 *   (c) uncached verify (fresh valid keys, each verified once) against the
 *       raw argon2 hash rate measured here, in this run;
 *   (d) cached verify while another 50 connections flood distinct wrong keys:
 *       random ones (unknown prefixes) and ones sharing a real key's prefix
 *       (each costs an argon2 hash), with the server's memory before/after;
 *   (e) isolation: 150 connections flood wrong secrets on one real prefix
 *       while another tenant's never-verified keys are verified once each,
 *       a few per second, and the flooding tenant's own cached key too.
 * Cached runs send one static body (no per-request work in the generator).
 * PostgreSQL: a database of its own, created and dropped
 * (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { randomBytes } from "node:crypto";
import { availableParallelism, loadavg } from "node:os";
import { hashRaw } from "@node-rs/argon2";
import pg from "pg";
import { type Spawned, spawnServer } from "../lib/processes.js";
import { type Load, run } from "./load.js";

const BASE = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
/** ROUNDS, ROUND_SECONDS: more or longer rounds on a noisy machine; ONLY=cached: scenarios (a) and (b) alone, for quick A/B runs. */
const positive = (name: string, fallback: number): number => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, not ${process.env[name]}`);
  return n;
};
const ROUNDS = positive("ROUNDS", 3);
const SECONDS = positive("ROUND_SECONDS", 5);
const ONLY_CACHED = process.env.ONLY === "cached";
const UNCACHED_KEYS = 300;
const ISOLATION_KEYS = 24;
const ISOLATION_EVERY_MS = 250;
const ISOLATION_FLOOD = 150;

const token = () => randomBytes(24).toString("base64url");
const admin = token();
const service = token();
const randomKey = () => `bp_${randomBytes(16).toString("base64url")}`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

const dbName = `tr_bench_${randomBytes(6).toString("hex")}`;
const dbUrl = new URL(BASE);
dbUrl.pathname = `/${dbName}`;

async function sql(url: string, text: string, values: unknown[] = []): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(text, values);
  } finally {
    await c.end();
  }
}

/** Setup calls; a 503 (the hashing threads busy on a loaded machine) is retried after its Retry-After, as a client would. */
async function api(server: Spawned, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: body === undefined ? null : JSON.stringify(body),
    });
    if (res.status === 503 && attempt < 10) {
      await res.text();
      await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get("retry-after") ?? 1)));
      continue;
    }
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  }
}

/** argon2id t=1 m=64MiB p=4 straight from the binding, as many in flight as there are CPUs. */
async function rawArgon2Rate(seconds: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  let n = 0;
  const options = { algorithm: 2, timeCost: 1, memoryCost: 65536, parallelism: 4, outputLen: 32 } as const;
  await Promise.all(
    Array.from({ length: availableParallelism() }, async () => {
      while (performance.now() < end) {
        await hashRaw(randomKey(), { ...options, salt: randomBytes(16) });
        n++;
      }
    }),
  );
  return n / ((performance.now() - start) / 1000);
}

async function main(): Promise<void> {
  const load0 = loadavg()[0] ?? 0;
  await sql(BASE, `CREATE DATABASE ${dbName}`);
  const servers: Spawned[] = [];
  try {
    const real = await spawnServer("src/cli.ts", ["serve"], {
      DATABASE_URL: dbUrl.toString(),
      REGISTRY_ADMIN_TOKEN: admin,
      REGISTRY_TOKENS: `bench:service:${service}`,
      LOG_LEVEL: "info",
    });
    servers.push(real);
    const bare = await spawnServer("bench/verify/bare-server.ts", [], {});
    servers.push(bare);

    await sql(dbUrl.toString(), "INSERT INTO products (key, name) VALUES ('crm', 'CRM')");
    const tenant = await api(real, "POST", "/v1/tenants", { slug: "bench", name: "Bench" });
    await sql(dbUrl.toString(), "INSERT INTO entitlements (tenant_id, product, status) VALUES ($1, 'crm', 'active')", [tenant.id]);
    const created = await api(real, "POST", "/v1/api-keys", { tenant_id: tenant.id, name: "bench", product: "crm", scopes: ["read"] });
    const key = String(created.key);
    const ask = { key, product: "crm", scope: "read" };
    const verify = (server: Spawned): Load => ({
      url: `${server.url}/v1/internal/api-keys/verify`,
      token: service,
      body: JSON.stringify(ask),
      cpuMs: server.cpuMs,
    });

    const warm = await run({ ...verify(real), inspect: true }, { seconds: 3 });
    // The ceiling gets the same warm-up, so that neither side's first round pays for its JIT.
    await run(verify(bare), { seconds: 3 });
    if (warm.reasons.valid === undefined)
      throw new Error(`the bench key does not verify: ${JSON.stringify({ ...warm.reasons, ...warm.statuses })}`);

    // (a) and (b), alternating so that drift in the machine's load hits both alike.
    const cached: Awaited<ReturnType<typeof run>>[] = [];
    const ceiling: Awaited<ReturnType<typeof run>>[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      cached.push(await run(verify(real), { seconds: SECONDS }));
      ceiling.push(await run(verify(bare), { seconds: SECONDS }));
    }

    if (ONLY_CACHED) {
      const a = median(cached.map((r) => r.rps));
      const b = median(ceiling.map((r) => r.rps));
      const each = (rs: typeof cached) => rs.map((r) => `${r.rps.toFixed(0)} (p99 ${r.p99}, ${r.cpuUs.toFixed(0)} µs CPU)`).join(", ");
      process.stdout.write(
        `machine: ${availableParallelism()} CPUs, load average ${load0.toFixed(2)} at start, ${(loadavg()[0] ?? 0).toFixed(2)} at end; ` +
          `autocannon -c 50, ${ROUNDS} x ${SECONDS} s rounds\n` +
          `(a) cached verify: ${each(cached)}\n(b) bare route:    ${each(ceiling)}\n` +
          `median: ${a.toFixed(0)} vs ${b.toFixed(0)} req/s = ${(a / b).toFixed(2)} x bare, p99 ${median(cached.map((r) => r.p99))} ms ` +
          `vs ${median(ceiling.map((r) => r.p99))} ms; server CPU per request ${median(cached.map((r) => r.cpuUs)).toFixed(0)} vs ` +
          `${median(ceiling.map((r) => r.cpuUs)).toFixed(0)} µs\n`,
      );
      return;
    }

    // (c) fresh keys, made through the API, each verified exactly once.
    const fresh: string[] = [];
    for (let i = 0; i < UNCACHED_KEYS; i += 4) {
      const batch = await Promise.all(
        Array.from({ length: 4 }, () => api(real, "POST", "/v1/api-keys", { tenant_id: tenant.id, name: "uncached", product: "crm" })),
      );
      fresh.push(...batch.map((k) => String(k.key)));
    }
    // The raw rate right before and right after, so drift in the machine's load hits both sides alike.
    const rawBefore = await rawArgon2Rate(3);
    let next = 0;
    const uncached = await run(
      {
        url: `${real.url}/v1/internal/api-keys/verify`,
        token: service,
        body: () => ({ key: fresh[next++ % fresh.length] as string }),
        inspect: true,
      },
      { amount: fresh.length },
    );
    const raw = (rawBefore + (await rawArgon2Rate(3))) / 2;

    // (d) valid cached traffic during floods of distinct wrong keys.
    const prefix = key.slice(0, 11);
    // Drawn ahead, so the generator spends its CPU sending, not drawing.
    const drawn = Array.from({ length: 200_000 }, randomKey);
    let d = 0;
    const floods = {
      "random wrong keys": () => ({ key: drawn[d++ % drawn.length] }),
      "wrong secrets, real prefix": () => ({ key: prefix + (drawn[d++ % drawn.length] as string).slice(11) }),
    };
    const flooded: {
      name: string;
      unloaded: number;
      valid: Awaited<ReturnType<typeof run>>;
      flood: Awaited<ReturnType<typeof run>>;
      before: number;
      after: number;
      peak: number;
    }[] = [];
    for (const [name, body] of Object.entries(floods)) {
      // Unloaded throughput right before and right after the flood, to compare like with like.
      const pre = await run(verify(real), { seconds: SECONDS });
      const before = real.memory().rss;
      const [valid, flood] = await Promise.all([
        run(verify(real), { seconds: SECONDS }),
        run({ url: `${real.url}/v1/internal/api-keys/verify`, token: service, body, inspect: true }, { seconds: SECONDS }),
      ]);
      const mem = real.memory();
      const post = await run(verify(real), { seconds: SECONDS });
      flooded.push({ name, unloaded: (pre.rps + post.rps) / 2, valid, flood, before, after: mem.rss, peak: mem.peak });
    }

    // (e) isolation: another tenant's fresh keys, verified once each during a 150-connection flood on one real prefix.
    const victim = await api(real, "POST", "/v1/tenants", { slug: "victim", name: "Victim" });
    const victimKeys: string[] = [];
    for (let i = 0; i < ISOLATION_KEYS; i++) {
      victimKeys.push(String((await api(real, "POST", "/v1/api-keys", { tenant_id: victim.id, name: "fresh" })).key));
    }
    const once = async (k: string): Promise<{ answer: string; ms: number }> => {
      const t0 = performance.now();
      const res = await fetch(`${real.url}/v1/internal/api-keys/verify`, {
        method: "POST",
        headers: { authorization: `Bearer ${service}`, "content-type": "application/json" },
        body: JSON.stringify({ key: k }),
      });
      const text = await res.text();
      const answer =
        res.status !== 200 ? String(res.status) : text.startsWith('{"valid":true') ? "valid" : (/"reason":"(\w+)"/.exec(text)?.[1] ?? "?");
      return { answer, ms: performance.now() - t0 };
    };
    const floodDone = run(
      { url: `${real.url}/v1/internal/api-keys/verify`, token: service, body: floods["wrong secrets, real prefix"], inspect: true },
      { seconds: Math.ceil((ISOLATION_KEYS * ISOLATION_EVERY_MS) / 1000) + 2, connections: ISOLATION_FLOOD },
    );
    await new Promise((r) => setTimeout(r, 1000));
    const fresh1: { answer: string; ms: number }[] = [];
    const own: string[] = [];
    await Promise.all(
      victimKeys.map(async (k, i) => {
        await new Promise((r) => setTimeout(r, i * ISOLATION_EVERY_MS));
        const [f, o] = await Promise.all([once(k), once(key)]);
        fresh1.push(f);
        own.push(o.answer);
      }),
    );
    const isolationFlood = await floodDone;
    const freshMs = fresh1.map((f) => f.ms).sort((x, y) => x - y);
    const pct = (q: number) => freshMs[Math.min(freshMs.length - 1, Math.floor(q * freshMs.length))] ?? 0;
    const freshValid = fresh1.filter((f) => f.answer === "valid").length;
    const freshAnswers = fresh1.reduce<Record<string, number>>((acc, f) => {
      acc[f.answer] = (acc[f.answer] ?? 0) + 1;
      return acc;
    }, {});

    // The table.
    const a = median(cached.map((r) => r.rps));
    const b = median(ceiling.map((r) => r.rps));
    const row = (label: string, rps: number, p50: number | string, p99: number | string, ratio: string) =>
      `| ${label.padEnd(58)} | ${(Number.isNaN(rps) ? "" : rps.toFixed(0)).padStart(7)} | ${String(p50).padStart(6)} | ${String(p99).padStart(6)} | ${ratio.padEnd(34)} |`;
    const lines = [
      `machine: ${availableParallelism()} CPUs, load average ${load0.toFixed(2)} at start, ${(loadavg()[0] ?? 0).toFixed(2)} at end; autocannon -c 50, ${SECONDS} s runs`,
      "",
      "| scenario                                                   |   req/s | p50 ms | p99 ms | ratio                              |",
      "|------------------------------------------------------------|--------:|-------:|-------:|------------------------------------|",
      ...cached.map((r, i) => row(`(a) cached verify, real server, round ${i + 1}`, r.rps, r.p50, r.p99, cpu(r))),
      ...ceiling.map((r, i) => row(`(b) bare Fastify route, round ${i + 1}`, r.rps, r.p50, r.p99, cpu(r))),
      row(
        "(a) cached verify, median",
        a,
        median(cached.map((r) => r.p50)),
        median(cached.map((r) => r.p99)),
        `${(a / b).toFixed(2)} x bare (target >= 0.65, goal 0.7)`,
      ),
      row("(b) bare Fastify route, median", b, median(ceiling.map((r) => r.p50)), median(ceiling.map((r) => r.p99)), ""),
      row("(c) raw argon2id hashes/s, bench process (mean before/after)", raw, "-", "-", ""),
      row(
        `(c) uncached verify, ${fresh.length} fresh keys`,
        uncached.rps,
        uncached.p50,
        uncached.p99,
        `${(uncached.rps / raw).toFixed(2)} x raw argon2 (target >= 0.9)`,
      ),
      ...flooded.flatMap((f) => [
        row("(d) cached verify, unloaded (mean before/after)", f.unloaded, "-", "-", ""),
        row(
          `(d) cached verify during flood: ${f.name}`,
          f.valid.rps,
          f.valid.p50,
          f.valid.p99,
          `${(f.valid.rps / f.unloaded).toFixed(2)} x unloaded (target >= 0.5)`,
        ),
        row("    the flood itself", f.flood.rps, f.flood.p50, f.flood.p99, summarize(f.flood)),
        row(
          `    server RSS, MiB: ${f.before.toFixed(0)} before, ${f.after.toFixed(0)} after, peak ${f.peak.toFixed(0)}`,
          Number.NaN,
          "",
          "",
          "",
        ),
      ]),
      row(
        `(e) another tenant's fresh keys, once each, ${1000 / ISOLATION_EVERY_MS}/s, during the flood`,
        Number.NaN,
        Math.round(pct(0.5)),
        Math.round(pct(0.99)),
        `${((100 * freshValid) / fresh1.length).toFixed(0)} % valid (target >= 95, p50 <= 250, p99 <= 2000)`,
      ),
      row(`    answers: ${JSON.stringify(freshAnswers)}`, Number.NaN, "", "", ""),
      row(`    the flooder's own cached key: ${own.filter((o) => o === "valid").length} of ${own.length} valid`, Number.NaN, "", "", ""),
      row(
        `    the flood itself, ${ISOLATION_FLOOD} connections, wrong secrets, real prefix`,
        isolationFlood.rps,
        isolationFlood.p50,
        isolationFlood.p99,
        summarize(isolationFlood),
      ),
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    const bad = [...cached, uncached, ...flooded.map((f) => f.valid)].filter((r) => r.errors > 0);
    if (bad.length > 0) process.stdout.write(`\nwarning: ${bad.length} runs saw connection errors or timeouts\n`);
    if (uncached.reasons.valid !== fresh.length) {
      process.stdout.write(`\nnote: uncached answers ${JSON.stringify({ ...uncached.reasons, ...uncached.statuses })}\n`);
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await sql(BASE, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  }
}

/** The server's CPU time per request (all its threads), from /proc: less noisy than req/s on a shared machine. */
function cpu(r: Awaited<ReturnType<typeof run>>): string {
  return `server CPU ${r.cpuUs.toFixed(0)} µs/request`;
}

function summarize(r: Awaited<ReturnType<typeof run>>): string {
  return Object.entries({ ...r.reasons, ...r.statuses })
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
}

await main();
