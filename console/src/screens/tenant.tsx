import { useState } from "preact/hooks";
import { ok, PLANS, type Plan, type Tenant, type TenantPatch } from "../api.js";
import { AuditTable } from "../components/audit-table.js";
import { ConfirmDialog, ErrorNote, PageTitle, Time, useAction, useLoad } from "../components/ui.js";
import { fromLocalInput, toLocalInput } from "../format.js";
import { useSession } from "../session.js";
import { EntitlementsSection } from "./tenant-entitlements.js";
import { ApiKeysSection } from "./tenant-keys.js";

type Editable = keyof TenantPatch;
const TEXT_FIELDS: [Editable, string][] = [
  ["sales_owner", "Sales owner"],
  ["erp_customer_id", "ERP customer id"],
  ["stripe_customer_id", "Stripe customer id"],
];
const TIME_FIELDS: [Editable, string][] = [
  ["trial_ends_at", "Trial ends"],
  ["contract_start", "Contract start"],
  ["contract_end", "Contract end"],
];

export function TenantScreen({ id }: { id: string }) {
  const { api } = useSession();
  const tenant = useLoad(() => ok(api.GET("/v1/tenants/{id}", { params: { path: { id } } })), [id]);
  const [current, setCurrent] = useState<Tenant | undefined>(undefined);
  const t = current && current.id === id ? current : tenant.data;
  // Lifecycle changes touch entitlements and the trail too: they reload with this counter.
  const [version, setVersion] = useState(0);
  const changed = (next: Tenant) => {
    setCurrent(next);
    setVersion((v) => v + 1);
  };

  if (!t) {
    return (
      <section>
        <PageTitle>{tenant.loading ? "Loading tenant…" : "Tenant not available"}</PageTitle>
        <ErrorNote error={tenant.error} />
      </section>
    );
  }
  return (
    <section>
      <PageTitle>{t.name}</PageTitle>
      <p class="muted mono">
        {t.slug} · {t.id}
      </p>
      <Lifecycle tenant={t} onChange={changed} />
      <Fields tenant={t} onChange={changed} />
      <EntitlementsSection tenant={t} version={version} onChange={() => setVersion((v) => v + 1)} />
      <ApiKeysSection tenant={t} onChange={() => setVersion((v) => v + 1)} />
      <TenantAudit tenantId={t.id} version={version} />
    </section>
  );
}

function Lifecycle({ tenant, onChange }: { tenant: Tenant; onChange(t: Tenant): void }) {
  const { api, canWrite } = useSession();
  const [confirming, setConfirming] = useState(false);
  const [busy, error, run] = useAction();
  const path = { params: { path: { id: tenant.id } } };
  const activate = () => run(async () => onChange(await ok(api.POST("/v1/tenants/{id}/activate", path))));
  const cancel = () =>
    run(async () => {
      onChange(await ok(api.POST("/v1/tenants/{id}/cancel", path)));
      setConfirming(false);
    });

  return (
    <div class="lifecycle">
      <p>
        <span id="status-label">Status</span>:{" "}
        <strong class={`badge ${tenant.status}`} role="note" aria-labelledby="status-label status-value" id="status-value">
          {tenant.status}
        </strong>
      </p>
      {canWrite ? (
        <div class="actions">
          {tenant.status === "pending" ? (
            <button type="button" disabled={busy} onClick={activate}>
              Activate
            </button>
          ) : null}
          {tenant.status !== "cancelled" ? (
            <button type="button" class="danger" disabled={busy} onClick={() => setConfirming(true)}>
              Cancel tenant
            </button>
          ) : null}
        </div>
      ) : null}
      <ErrorNote error={error} />
      <ConfirmDialog open={confirming} title={`Cancel ${tenant.name}?`} busy={busy} onConfirm={cancel} onClose={() => setConfirming(false)}>
        <p>Cancelling is final: the tenant's products are cancelled and its API keys stop verifying at once. It cannot be undone.</p>
        <ErrorNote error={error} />
      </ConfirmDialog>
    </div>
  );
}

function Fields({ tenant, onChange }: { tenant: Tenant; onChange(t: Tenant): void }) {
  return (
    <section aria-labelledby="fields-heading">
      <h2 id="fields-heading">Details</h2>
      <dl class="fields">
        <dt>Kind</dt>
        <dd>{tenant.kind}</dd>
        <PlanField tenant={tenant} onChange={onChange} />
        {TEXT_FIELDS.map(([field, label]) => (
          <EditableField key={field} tenant={tenant} field={field} label={label} kind="text" onChange={onChange} />
        ))}
        {TIME_FIELDS.map(([field, label]) => (
          <EditableField key={field} tenant={tenant} field={field} label={label} kind="time" onChange={onChange} />
        ))}
        <dt>Created</dt>
        <dd>
          <Time iso={tenant.created_at} />
        </dd>
        <dt>Updated</dt>
        <dd>
          <Time iso={tenant.updated_at} />
        </dd>
      </dl>
    </section>
  );
}

function PlanField({ tenant, onChange }: { tenant: Tenant; onChange(t: Tenant): void }) {
  const { api, canWrite } = useSession();
  const [busy, error, run] = useAction();
  if (!canWrite) {
    return (
      <>
        <dt>Plan</dt>
        <dd>{tenant.plan}</dd>
      </>
    );
  }
  const change = (plan: Plan) =>
    run(async () => onChange(await ok(api.PATCH("/v1/tenants/{id}", { params: { path: { id: tenant.id } }, body: { plan } }))));
  return (
    <>
      <dt>
        <label for="field-plan">Plan</label>
      </dt>
      <dd>
        <select id="field-plan" value={tenant.plan} disabled={busy} onChange={(e) => change(e.currentTarget.value as Plan)}>
          {PLANS.map((p) => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
        <ErrorNote error={error} />
      </dd>
    </>
  );
}

/** Shows a field; an admin edits it in place (Edit, then Save or Discard). An empty value clears it. */
function EditableField(props: { tenant: Tenant; field: Editable; label: string; kind: "text" | "time"; onChange(t: Tenant): void }) {
  const { tenant, field, label, kind } = props;
  const { api, canWrite } = useSession();
  const value = tenant[field] as string | null;
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState("");
  const [busy, error, run, clear] = useAction();
  const inputId = `field-${field}`;

  const start = () => {
    setDraft(kind === "time" ? toLocalInput(value) : (value ?? ""));
    clear();
    setEditing(true);
  };
  const save = (e: Event) => {
    e.preventDefault();
    run(async () => {
      const next = kind === "time" ? fromLocalInput(draft) : draft.trim() || null;
      const body = { [field]: next } as TenantPatch;
      props.onChange(await ok(api.PATCH("/v1/tenants/{id}", { params: { path: { id: tenant.id } }, body })));
      setEditing(false);
    });
  };

  if (editing) {
    return (
      <>
        <dt>
          <label for={inputId}>{label}</label>
        </dt>
        <dd>
          <form class="inline" onSubmit={save} onKeyDown={(e) => e.key === "Escape" && setEditing(false)}>
            {kind === "time" ? (
              // biome-ignore lint/a11y/noAutofocus: the user just asked to edit this field.
              <input id={inputId} type="datetime-local" value={draft} onInput={(e) => setDraft(e.currentTarget.value)} autoFocus />
            ) : (
              // biome-ignore lint/a11y/noAutofocus: the user just asked to edit this field.
              <input id={inputId} type="text" value={draft} onInput={(e) => setDraft(e.currentTarget.value)} autoFocus />
            )}
            <button type="submit" disabled={busy}>
              Save
            </button>
            <button type="button" onClick={() => setEditing(false)}>
              Discard
            </button>
            {kind === "time" ? <small>Your local time; empty clears.</small> : <small>Empty clears.</small>}
          </form>
          <ErrorNote error={error} />
        </dd>
      </>
    );
  }
  return (
    <>
      <dt>{label}</dt>
      <dd>
        {kind === "time" ? <Time iso={value} /> : (value ?? <span class="muted">—</span>)}
        {canWrite ? (
          <button type="button" class="link" aria-label={`Edit ${label.toLowerCase()}`} onClick={start}>
            Edit
          </button>
        ) : null}
      </dd>
    </>
  );
}

function TenantAudit({ tenantId, version }: { tenantId: string; version: number }) {
  const { api } = useSession();
  const [extra, setExtra] = useState<{ events: NonNullable<typeof first.data>["events"]; cursor: string | null } | null>(null);
  const first = useLoad(async () => {
    setExtra(null);
    return ok(api.GET("/v1/audit", { params: { query: { tenant_id: tenantId, limit: 100 } } }));
  }, [tenantId, version]);
  const [busy, error, run] = useAction();
  const events = [...(first.data?.events ?? []), ...(extra?.events ?? [])];
  const cursor = extra ? extra.cursor : (first.data?.next_cursor ?? null);
  const more = () =>
    run(async () => {
      if (!cursor) return;
      const page = await ok(api.GET("/v1/audit", { params: { query: { tenant_id: tenantId, limit: 100, cursor } } }));
      setExtra((x) => ({ events: [...(x?.events ?? []), ...page.events], cursor: page.next_cursor }));
    });
  return (
    <section aria-labelledby="trail-heading">
      <h2 id="trail-heading">Audit trail</h2>
      <ErrorNote error={first.error ?? error} />
      {events.length ? <AuditTable events={events} caption="This tenant's audit events, oldest first" showTenant={false} /> : null}
      {!first.loading && events.length === 0 ? <p class="muted">No events.</p> : null}
      {cursor ? (
        <button type="button" disabled={busy} onClick={more}>
          Load more
        </button>
      ) : null}
    </section>
  );
}
