import autocannon from "autocannon";

export interface Load {
  url: string;
  token: string;
  /** The JSON body of each request (called per request, so bodies may differ). */
  body: () => unknown;
  /** Read every answer to count reasons (costs the load generator CPU, so off for throughput runs). */
  inspect?: boolean;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** 200 answers by `reason` ("valid" for a valid key). */
  reasons: Record<string, number>;
  /** Other statuses, e.g. 503. */
  statuses: Record<string, number>;
}

/** autocannon, 50 connections, for `seconds` or for exactly `amount` requests. */
export async function run(load: Load, until: { seconds?: number; amount?: number }): Promise<LoadResult> {
  const reasons: Record<string, number> = {};
  const statuses: Record<string, number> = {};
  const result = await autocannon({
    url: load.url,
    method: "POST",
    connections: 50,
    ...(until.amount ? { amount: until.amount } : { duration: until.seconds ?? 5 }),
    headers: { authorization: `Bearer ${load.token}`, "content-type": "application/json" },
    requests: [
      {
        setupRequest: (req) => ({ ...req, body: JSON.stringify(load.body()) }),
        onResponse: (status, body) => {
          if (!load.inspect && status === 200) return;
          if (status !== 200) {
            statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
            return;
          }
          const parsed = JSON.parse(body) as { valid: boolean; reason?: string };
          const reason = parsed.valid ? "valid" : (parsed.reason ?? "?");
          reasons[reason] = (reasons[reason] ?? 0) + 1;
        },
      },
    ],
  });
  const seconds = result.duration;
  const total = result.requests.total;
  return {
    rps: total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    reasons,
    statuses,
  };
}
