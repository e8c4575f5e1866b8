import type { Registry } from "prom-client";

/** Upper bounds, in seconds, of the request-duration histogram's buckets. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

const REQUESTS = "tenant_registry_http_requests_total";
const DURATION = "tenant_registry_http_request_duration_seconds";

interface Series {
  labels: { method: string; route: string; status: string };
  count: number;
  sum: number;
  /** Answers per bucket (not cumulative; summed at scrape), the last one past every bound. */
  buckets: Float64Array;
}

/** Records one answer of a route: its status and how long it took, in seconds. */
export type Recorder = (status: number, seconds: number) => void;

/**
 * Request counts and latencies by method, route pattern and status, the
 * Prometheus way (a counter and a histogram with the same labels), kept
 * in plain numbers: a request adds to its series directly, found through
 * its route's recorder by status, with no label hashing on the request
 * path. prom-client's registry reads them at scrape time, as the metrics
 * `tenant_registry_http_requests_total` and
 * `tenant_registry_http_request_duration_seconds`.
 */
export class RequestMetrics {
  private readonly series: Series[] = [];

  /** The recorder of one route (made when the route is added, so a request does no lookup but its status's). */
  recorder(method: string, route: string): Recorder {
    const byStatus = new Map<number, Series>();
    return (status, seconds) => {
      let s = byStatus.get(status);
      if (s === undefined) {
        s = { labels: { method, route, status: String(status) }, count: 0, sum: 0, buckets: new Float64Array(DURATION_BUCKETS.length + 1) };
        byStatus.set(status, s);
        this.series.push(s);
      }
      s.count++;
      s.sum += seconds;
      let i = 0;
      while (i < DURATION_BUCKETS.length && seconds > (DURATION_BUCKETS[i] as number)) i++;
      (s.buckets[i] as number)++;
    };
  }

  /** Adds both metrics to `registry`, read from these series at each scrape. */
  register(registry: Registry): void {
    const series = this.series;
    const reset = () => {
      for (const s of series) {
        s.count = 0;
        s.sum = 0;
        s.buckets.fill(0);
      }
    };
    // The registry may rename a counter (OpenMetrics drops and re-adds `_total`): read the name it holds.
    const requests = {
      name: REQUESTS,
      help: "HTTP requests by method, route pattern and status.",
      type: "counter",
      aggregator: "sum",
      get: async () => ({ ...requests, values: series.map((s) => ({ labels: s.labels, value: s.count })) }),
      reset,
    };
    const duration = {
      name: DURATION,
      help: "HTTP request latency by method, route pattern and status.",
      type: "histogram",
      aggregator: "sum",
      get: async () => ({
        ...duration,
        values: series.flatMap((s) => {
          let cumulative = 0;
          const out: { metricName: string; labels: Record<string, string | number>; value: number }[] = DURATION_BUCKETS.map((le, i) => {
            cumulative += s.buckets[i] as number;
            return { metricName: `${DURATION}_bucket`, labels: { ...s.labels, le }, value: cumulative };
          });
          out.push(
            { metricName: `${DURATION}_bucket`, labels: { ...s.labels, le: "+Inf" }, value: s.count },
            { metricName: `${DURATION}_sum`, labels: s.labels, value: s.sum },
            { metricName: `${DURATION}_count`, labels: s.labels, value: s.count },
          );
          return out;
        }),
      }),
      reset,
    };
    registry.registerMetric(requests as unknown as Parameters<Registry["registerMetric"]>[0]);
    registry.registerMetric(duration as unknown as Parameters<Registry["registerMetric"]>[0]);
  }
}
