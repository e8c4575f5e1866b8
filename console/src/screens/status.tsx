import { authHeaders, rawCall } from "../api.js";
import { ErrorNote, PageTitle, Time, useLoad } from "../components/ui.js";
import { useSession } from "../session.js";

/** Sums of the Prometheus samples of one metric, optionally grouped by one label. */
function sumMetric(text: string, name: string, by?: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== "{" && line[name.length] !== " ")) continue;
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (!Number.isFinite(value)) continue;
    const label = by ? (new RegExp(`${by}="([^"]*)"`).exec(line)?.[1] ?? "") : "";
    out.set(label, (out.get(label) ?? 0) + value);
  }
  return out;
}

async function readiness(): Promise<string> {
  const res = await fetch("/readyz");
  const body = (await res.json().catch(() => ({}))) as { status?: string; detail?: string };
  return res.ok ? (body.status ?? "ready") : `not ready: ${body.detail ?? res.status}`;
}

export function StatusScreen() {
  const { token } = useSession();
  const ready = useLoad(readiness, []);
  const doc = useLoad(() => fetch("/openapi.json").then((r) => r.json() as Promise<{ info?: { version?: string } }>), []);
  const metrics = useLoad(async () => {
    const res = await fetch("/metrics", { credentials: "same-origin", headers: authHeaders(token) });
    if (!res.ok) {
      // Read again through the one error path, which shows the problem (the first body is dropped).
      await res.body?.cancel();
      await rawCall(token, "GET", "/metrics");
    }
    return res.text();
  }, []);

  const text = metrics.data ?? "";
  const started = sumMetric(text, "tenant_registry_process_start_time_seconds").get("");
  const requests = sumMetric(text, "tenant_registry_http_requests_total").get("");
  const verify = sumMetric(text, "tenant_registry_verify_results_total", "result");
  const authFailures = sumMetric(text, "tenant_registry_auth_failures_total").get("");
  const cache = sumMetric(text, "tenant_registry_verify_cache_entries").get("");
  const rss = sumMetric(text, "tenant_registry_process_resident_memory_bytes").get("");

  return (
    <section>
      <PageTitle>Status</PageTitle>
      <dl class="fields">
        <dt>Readiness</dt>
        <dd>{ready.loading ? "checking…" : (ready.data ?? "unknown")}</dd>
        <dt>API version</dt>
        <dd>{doc.data?.info?.version ?? "—"}</dd>
        <dt>Up since</dt>
        <dd>
          <Time iso={started ? new Date(started * 1000).toISOString() : null} />
        </dd>
        <dt>HTTP requests served</dt>
        <dd>{requests ?? "—"}</dd>
        <dt>Key verifications</dt>
        <dd>
          {verify.size
            ? [...verify.entries()]
                .sort()
                .map(([k, v]) => `${k || "total"}: ${v}`)
                .join(", ")
            : "none yet"}
        </dd>
        <dt>Verify cache entries</dt>
        <dd>{cache ?? "—"}</dd>
        <dt>Refused authentications</dt>
        <dd>{authFailures ?? 0}</dd>
        <dt>Memory (RSS)</dt>
        <dd>{rss ? `${Math.round(rss / 1048576)} MiB` : "—"}</dd>
      </dl>
      <ErrorNote error={ready.error ?? doc.error ?? metrics.error} />
      <button
        type="button"
        onClick={() => {
          ready.reload();
          metrics.reload();
        }}
      >
        Refresh
      </button>
    </section>
  );
}
