import { useState } from "preact/hooks";
import { ApiError, rawCall, type WebhookDelivery, type WebhookEndpoint } from "../api.js";
import { TenantLink } from "../components/tenant-link.js";
import { ErrorNote, PageTitle, Time, useAction, useLoad } from "../components/ui.js";
import { eventTenants } from "../event-tenants.js";
import { Breakable } from "../format.js";
import { useSession } from "../session.js";

const UNAVAILABLE = "webhooks are not available on this registry";

export function WebhooksScreen() {
  const { token } = useSession();
  const list = useLoad(async () => {
    try {
      return (await rawCall<{ webhooks: WebhookEndpoint[] }>(token, "GET", "/v1/webhooks"))?.webhooks ?? [];
    } catch (err) {
      // A registry from before the webhook API answers 404 for the whole path.
      if (err instanceof ApiError && err.problem.status === 404) return null;
      throw err;
    }
  }, []);

  return (
    <section>
      <PageTitle>Webhooks</PageTitle>
      <ErrorNote error={list.error} />
      {list.loading ? <p class="muted">Loading…</p> : null}
      {list.data === null ? <p class="notice">{UNAVAILABLE}.</p> : null}
      {list.data && list.data.length === 0 ? <p class="muted">No webhook endpoints.</p> : null}
      {(list.data ?? []).map((w) => (
        <Endpoint key={w.id} endpoint={w} />
      ))}
    </section>
  );
}

function Endpoint({ endpoint }: { endpoint: WebhookEndpoint }) {
  const { token, canWrite } = useSession();
  const [open, setOpen] = useState(false);
  const deliveries = useLoad(
    async () =>
      open
        ? ((await rawCall<{ deliveries: WebhookDelivery[] }>(token, "GET", `/v1/webhooks/${endpoint.id}/deliveries`))?.deliveries ?? [])
        : [],
    [open],
  );
  // A delivery names its audit event; the event names the tenant, looked up for the whole list at once.
  const tenants = useLoad(
    () =>
      eventTenants(
        token,
        (deliveries.data ?? []).flatMap((d) => (d.event_id ? [{ id: d.event_id, action: d.event_type }] : [])),
      ),
    [deliveries.data],
  );
  const [busy, error, run] = useAction();
  const retry = (d: WebhookDelivery) =>
    run(async () => {
      await rawCall(token, "POST", `/v1/webhooks/${endpoint.id}/deliveries/${d.id}/retry`);
      deliveries.reload();
    });
  const headingId = `wh-${endpoint.id}`;
  return (
    <section class="card" aria-labelledby={headingId}>
      <h2 id={headingId} class="mono break">
        {endpoint.url}
      </h2>
      <p>
        {endpoint.enabled ? <span class="badge active">enabled</span> : <span class="badge cancelled">disabled</span>}{" "}
        {endpoint.description ?? ""} · events: <span class="mono">{endpoint.events.join(", ")}</span> · created{" "}
        <Time iso={endpoint.created_at} />
      </p>
      <button type="button" aria-expanded={open} onClick={() => setOpen((o) => !o)}>
        {open ? "Hide deliveries" : "Show deliveries"}
      </button>
      {open ? (
        <>
          <ErrorNote error={deliveries.error ?? error} />
          <table class="list">
            <caption class="visually-hidden">Deliveries to {endpoint.url}, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Tenant</th>
                <th scope="col">Status</th>
                <th scope="col" class="wide">
                  Attempts
                </th>
                <th scope="col" class="wide">
                  Last error
                </th>
                <th scope="col">Created</th>
                {canWrite ? <th scope="col">Actions</th> : null}
              </tr>
            </thead>
            <tbody>
              {(deliveries.data ?? []).map((d) => (
                <tr key={d.id}>
                  <td class="mono">
                    <Breakable text={d.event_type} /> #{d.event_id}
                  </td>
                  <td>
                    <DeliveryTenant tenantId={d.event_id ? tenants.data?.get(d.event_id) : null} loading={tenants.loading} />
                  </td>
                  <td>
                    <span class={`badge ${d.status}`}>{d.status}</span>
                  </td>
                  <td class="wide">{d.attempts}</td>
                  <td class="wide">{d.last_error ?? (d.last_status_code ? `HTTP ${d.last_status_code}` : "—")}</td>
                  <td>
                    <Time iso={d.created_at} />
                  </td>
                  {canWrite ? (
                    <td>
                      {d.status === "succeeded" ? null : (
                        <button type="button" disabled={busy} aria-label={`Retry delivery ${d.id}`} onClick={() => retry(d)}>
                          Retry
                        </button>
                      )}
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
          {!deliveries.loading && (deliveries.data ?? []).length === 0 ? <p class="muted">No deliveries yet.</p> : null}
        </>
      ) : null}
    </section>
  );
}

function DeliveryTenant({ tenantId, loading }: { tenantId: string | null | undefined; loading: boolean }) {
  if (tenantId) return <TenantLink id={tenantId} />;
  return <span class="muted">{loading && tenantId === undefined ? "…" : "—"}</span>;
}
