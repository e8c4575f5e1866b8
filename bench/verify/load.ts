import autocannon from "autocannon";

export interface Load {
  url: string;
  token: string;
  /**
   * The JSON body of each request: a function is called per request (so
   * bodies may differ, at the load generator's CPU cost); a string is sent
   * as is on every request (no per-request work in the generator, which on
   * a 2-core machine would otherwise compress the ratios toward 1).
   */
  body: (() => unknown) | string;
  /** Read every answer to count reasons (costs the load generator CPU, so off for throughput runs). */
  inspect?: boolean;
  /** CPU time used so far by the server under test, in ms: sampled before and after, it gives the CPU cost per request. */
  cpuMs?: () => number;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** The server's CPU time (all threads) per answered request, in µs, when `cpuMs` was given; else NaN. */
  cpuUs: number;
  /** 200 answers by `reason` ("valid" for a valid key). */
  reasons: Record<string, number>;
  /** Other statuses, e.g. 503. */
  statuses: Record<string, number>;
}

/** autocannon, `connections` (default 50), for `seconds` or for exactly `amount` requests. */
export async function run(load: Load, until: { seconds?: number; amount?: number; connections?: number }): Promise<LoadResult> {
  const reasons: Record<string, number> = {};
  const statuses: Record<string, number> = {};
  let answered = 0;
  let lastAnswer = 0;
  const start = performance.now();
  const cpu0 = load.cpuMs?.() ?? Number.NaN;
  const result = await autocannon({
    url: load.url,
    method: "POST",
    connections: until.connections ?? 50,
    ...(until.amount ? { amount: until.amount } : { duration: until.seconds ?? 5 }),
    headers: { authorization: `Bearer ${load.token}`, "content-type": "application/json" },
    requests: [
      {
        ...(typeof load.body === "string" ? { body: load.body } : {}),
        ...(typeof load.body === "function"
          ? { setupRequest: (req) => ({ ...req, body: JSON.stringify((load.body as () => unknown)()) }) }
          : {}),
        onResponse: (status, body) => {
          answered++;
          lastAnswer = performance.now();
          if (!load.inspect && status === 200) return;
          if (status !== 200) {
            statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
            return;
          }
          // A regex rather than JSON.parse: the load generator shares the machine with the server.
          const reason = /"reason":"(\w+)"/.exec(body)?.[1] ?? (body.startsWith('{"valid":true') ? "valid" : "?");
          reasons[reason] = (reasons[reason] ?? 0) + 1;
        },
      },
    ],
  });
  // autocannon notices that `amount` is reached only at its next 1 s tick; time those runs to the last answer.
  const cpuUs = (((load.cpuMs?.() ?? Number.NaN) - cpu0) * 1000) / result.requests.total;
  const rps = until.amount ? answered / ((lastAnswer - start) / 1000) : result.requests.total / result.duration;
  return {
    rps,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    cpuUs,
    reasons,
    statuses,
  };
}
