import autocannon from "autocannon";
import type pg from "pg";

/** `concurrency` loops issuing `statement` back to back on `pool` for `seconds`: statements per second. */
export async function sqlLoop(pool: pg.Pool, concurrency: number, seconds: number, statement: () => [string, unknown[]]): Promise<number> {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const [text, values] = statement();
        await pool.query(text, values);
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

export interface HttpRun {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
}

/**
 * autocannon against one POST, cycling through ready-made bodies (building
 * them on the fly would spend the load generator's CPU, which the server
 * shares); fails loudly on anything but 2xx.
 */
export async function httpPost(
  url: string,
  token: string,
  bodies: readonly string[],
  connections: number,
  seconds: number,
): Promise<HttpRun> {
  let next = 0;
  const r = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }),
      },
    ],
  });
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${url}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return { rps: r["2xx"] / r.duration, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx };
}

export interface Latency {
  p50: number;
  p99: number;
  requests: number;
  meanEvents: number;
}

/**
 * Sequential GETs (no queueing in the figures), each with fresh random
 * parameters, for `seconds` or `max` requests. Milliseconds, client side.
 */
export async function getLatency(base: string, token: string, path: () => string, seconds: number, max: number): Promise<Latency> {
  const times: number[] = [];
  let events = 0;
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until && times.length < max) {
    const url = `${base}${path()}`;
    const t0 = performance.now();
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { events?: unknown[] };
    times.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${JSON.stringify(body)}`);
    events += body.events?.length ?? 0;
  }
  times.sort((a, b) => a - b);
  const at = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), requests: times.length, meanEvents: events / times.length };
}
