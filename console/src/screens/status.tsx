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

interface AuditLogStatus {
  /** The newest signed checkpoint, or null before the first event is sequenced. */
  checkpoint: { origin: string; size: number; root: string; signedAt: string | null } | null;
  verifierKey: string;
}

/** The audit log's newest checkpoint (its body: origin, size, root) and the verifier key anyone may check it with. */
async function auditLogStatus(token: string | null): Promise<AuditLogStatus> {
  const key = await fetch("/v1/audit/log/key");
  const verifierKey = key.ok ? (await key.text()).trim() : "";
  const res = await fetch("/v1/audit/log/checkpoint", { credentials: "same-origin", headers: authHeaders(token) });
  if (res.status === 404) {
    await res.body?.cancel();
    return { checkpoint: null, verifierKey };
  }
  if (!res.ok) {
    await res.body?.cancel();
    await rawCall(token, "GET", "/v1/audit/log/checkpoint");
  }
  const [origin = "", size = "", root = ""] = (await res.text()).split("\n");
  const modified = res.headers.get("last-modified");
  return {
    checkpoint: { origin, size: Number(size), root, signedAt: modified ? new Date(modified).toISOString() : null },
    verifierKey,
  };
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
  const auditLog = useLoad(() => auditLogStatus(token), []);
  const checkpoint = auditLog.data?.checkpoint;

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
      <h2>Audit log</h2>
      <dl class="fields">
        <dt>Checkpoint size</dt>
        <dd>
          {auditLog.loading
            ? "loading…"
            : checkpoint
              ? `${checkpoint.size.toLocaleString("en-US")} events`
              : auditLog.data
                ? "none yet (nothing is sequenced)"
                : "—"}
        </dd>
        <dt>Root hash</dt>
        <dd>
          <code class="break">{checkpoint?.root ?? "—"}</code>
        </dd>
        <dt>Signed</dt>
        <dd>
          <Time iso={checkpoint?.signedAt ?? null} />
        </dd>
        <dt>Verifier key</dt>
        <dd>
          <code class="break">{auditLog.data?.verifierKey || "—"}</code>
        </dd>
      </dl>
      <p class="muted">
        Anyone holding the verifier key can check the log with <code>tenant-registry audit verify --key …</code>.
      </p>
      <ErrorNote error={ready.error ?? doc.error ?? metrics.error ?? auditLog.error} />
      <button
        type="button"
        onClick={() => {
          ready.reload();
          metrics.reload();
          auditLog.reload();
        }}
      >
        Refresh
      </button>
    </section>
  );
}
