import { useEffect, useState } from "preact/hooks";
import { ok, PLANS, type Plan, TENANT_STATUSES, type Tenant, type TenantStatus } from "../api.js";
import { ErrorNote, Link, PageTitle, Time, useAction, useReveal } from "../components/ui.js";
import { navigate } from "../router.js";
import { useSession } from "../session.js";

const PAGE = 50;

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

export function TenantsScreen() {
  const { api, canWrite, tenants } = useSession();
  const [q, setQ] = useState("");
  const [status, setStatus] = useState<TenantStatus | "">("");
  const [plan, setPlan] = useState<Plan | "">("");
  const search = useDebounced(q.trim(), 250);
  const [rows, setRows] = useState<Tenant[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(undefined);
  const [creating, setCreating] = useState(false);

  const query = { ...(search ? { q: search } : {}), ...(status ? { status } : {}), ...(plan ? { plan } : {}), limit: PAGE };

  const load = async (after: string | null, signal: { stale: boolean }) => {
    setLoading(true);
    setError(undefined);
    try {
      const page = await ok(api.GET("/v1/tenants", { params: { query: { ...query, ...(after ? { cursor: after } : {}) } } }));
      if (signal.stale) return;
      tenants.remember(page.tenants);
      setRows((r) => (after ? [...r, ...page.tenants] : page.tenants));
      setCursor(page.next_cursor);
    } catch (err) {
      if (!signal.stale) setError(err);
    } finally {
      if (!signal.stale) setLoading(false);
    }
  };

  useEffect(() => {
    const signal = { stale: false };
    load(null, signal);
    return () => {
      signal.stale = true;
    };
  }, [search, status, plan]);

  return (
    <section>
      <div class="title-row">
        <PageTitle>Tenants</PageTitle>
        {canWrite ? (
          <button type="button" aria-expanded={creating} aria-controls="new-tenant" onClick={() => setCreating((c) => !c)}>
            New tenant
          </button>
        ) : null}
      </div>
      {creating && canWrite ? <NewTenantForm onDone={() => setCreating(false)} /> : null}
      <form class="filters" aria-label="Tenants" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="tenant-search">Search</label>
          <input id="tenant-search" type="search" placeholder="slug or name" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="filter-status">Filter by status</label>
          <select id="filter-status" value={status} onChange={(e) => setStatus(e.currentTarget.value as TenantStatus | "")}>
            <option value="">any status</option>
            {TENANT_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="filter-plan">Filter by plan</label>
          <select id="filter-plan" value={plan} onChange={(e) => setPlan(e.currentTarget.value as Plan | "")}>
            <option value="">any plan</option>
            {PLANS.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </div>
      </form>
      <ErrorNote error={error} />
      <table class="list">
        <caption class="visually-hidden">Tenants, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Slug</th>
            <th scope="col">Plan</th>
            <th scope="col">Status</th>
            <th scope="col" class="wide">
              Created
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((t) => (
            <tr key={t.id}>
              <td>
                <Link to={`tenants/${t.id}`}>{t.name}</Link>
              </td>
              <td class="mono">{t.slug}</td>
              <td>{t.plan}</td>
              <td>
                <span class={`badge ${t.status}`}>{t.status}</span>
              </td>
              <td class="wide">
                <Time iso={t.created_at} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted" aria-live="polite">
        {loading ? "Loading…" : rows.length === 0 ? "No tenants match." : `${rows.length} shown${cursor ? "; more below" : ""}.`}
      </p>
      {cursor && !loading ? (
        <button type="button" onClick={() => load(cursor, { stale: false })}>
          Load more
        </button>
      ) : null}
    </section>
  );
}

function NewTenantForm({ onDone }: { onDone(): void }) {
  const { api } = useSession();
  const [slug, setSlug] = useState("");
  const [name, setName] = useState("");
  const [plan, setPlan] = useState<Plan>("starter");
  const [busy, error, run] = useAction();
  const ref = useReveal<HTMLFormElement>();

  const submit = (e: Event) => {
    e.preventDefault();
    run(async () => {
      const tenant = await ok(api.POST("/v1/tenants", { body: { slug: slug.trim(), name, plan } }));
      onDone();
      navigate(`tenants/${tenant.id}`);
    });
  };

  return (
    <form ref={ref} id="new-tenant" class="card" aria-label="New tenant" onSubmit={submit}>
      <h2>New tenant</h2>
      <div class="field">
        <label for="new-slug">Slug</label>
        <input
          id="new-slug"
          required
          minLength={3}
          maxLength={63}
          pattern="[a-z][a-z0-9\-]*[a-z0-9]"
          aria-describedby="new-slug-hint"
          value={slug}
          onInput={(e) => setSlug(e.currentTarget.value)}
        />
        <small id="new-slug-hint">3–63 characters: a–z, 0–9 and -, starting with a letter.</small>
      </div>
      <div class="field">
        <label for="new-name">Name</label>
        <input id="new-name" required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="new-plan">Plan</label>
        <select id="new-plan" value={plan} onChange={(e) => setPlan(e.currentTarget.value as Plan)}>
          {PLANS.map((p) => (
            <option key={p} value={p}>
              {p}
            </option>
          ))}
        </select>
      </div>
      <div class="actions">
        <button type="submit" disabled={busy}>
          Create
        </button>
      </div>
      <ErrorNote error={error} />
    </form>
  );
}
