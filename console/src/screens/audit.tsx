import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, type AuditEvent, type AuditQuery, ok, type RegistryClient } from "../api.js";
import { AuditTable } from "../components/audit-table.js";
import { ErrorNote, PageTitle } from "../components/ui.js";
import { fromLocalInput, UUID } from "../format.js";
import { useSession } from "../session.js";

const PAGE = 100;
const POLL_MS = 2000;

interface Filters {
  tenant: string;
  product: string;
  actor: string;
  action: string;
  since: string;
  until: string;
}
const EMPTY: Filters = { tenant: "", product: "", actor: "", action: "", since: "", until: "" };

/** The tenant field takes a slug or an id; a slug is looked up once per change. */
async function toQuery(api: RegistryClient, f: Filters): Promise<Omit<AuditQuery, "cursor" | "limit">> {
  const q: Omit<AuditQuery, "cursor" | "limit"> = {};
  const tenant = f.tenant.trim();
  if (tenant) {
    q.tenant_id = UUID.test(tenant) ? tenant : (await ok(api.GET("/v1/tenants/by-slug/{slug}", { params: { path: { slug: tenant } } }))).id;
  }
  if (f.product.trim()) q.product = f.product.trim();
  if (f.actor.trim()) q.actor_id = f.actor.trim();
  if (f.action.trim()) q.action = f.action.trim();
  const since = fromLocalInput(f.since);
  const until = fromLocalInput(f.until);
  if (since) q.since = since;
  if (until) q.until = until;
  return q;
}

export function AuditScreen() {
  const { api } = useSession();
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [applied, setApplied] = useState<Filters>(EMPTY);
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(undefined);
  const [live, setLive] = useState(false);
  // What the tail needs between polls, outside render: the query, the last non-null cursor, the ids seen.
  const tail = useRef<{ query: Omit<AuditQuery, "cursor" | "limit"> | null; cursor: string | null; seen: Set<string> }>({
    query: null,
    cursor: null,
    seen: new Set(),
  });
  const generation = useRef(0);

  // Filters apply as they change (typing settles for 300 ms first).
  useEffect(() => {
    const t = setTimeout(() => setApplied(filters), 300);
    return () => clearTimeout(t);
  }, [filters]);

  useEffect(() => {
    const mine = ++generation.current;
    setLoading(true);
    setError(undefined);
    (async () => {
      const query = await toQuery(api, applied);
      const page = await ok(api.GET("/v1/audit", { params: { query: { ...query, limit: PAGE } } }));
      if (mine !== generation.current) return;
      tail.current = { query, cursor: page.next_cursor, seen: new Set(page.events.map((e) => e.id)) };
      setEvents(page.events);
      setCursor(page.next_cursor);
    })()
      .catch((err: unknown) => {
        if (mine !== generation.current) return;
        tail.current.query = null;
        setEvents([]);
        setCursor(null);
        setError(
          err instanceof ApiError && err.problem.status === 404 && applied.tenant
            ? new ApiError({ ...err.problem, detail: `no tenant "${applied.tenant.trim()}"` })
            : err,
        );
      })
      .finally(() => mine === generation.current && setLoading(false));
  }, [api, applied]);

  const loadMore = async () => {
    const t = tail.current;
    if (!cursor || !t.query) return;
    try {
      const page = await ok(api.GET("/v1/audit", { params: { query: { ...t.query, limit: PAGE, cursor } } }));
      const fresh = page.events.filter((e) => !t.seen.has(e.id));
      for (const e of fresh) t.seen.add(e.id);
      if (page.next_cursor) t.cursor = page.next_cursor;
      setEvents((list) => [...list, ...fresh]);
      setCursor(page.next_cursor);
    } catch (err) {
      setError(err);
    }
  };

  // Live tail: poll from the last non-null cursor, skip ids already shown (the last page may come again).
  useEffect(() => {
    if (!live) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout>;
    const poll = async () => {
      const t = tail.current;
      if (t.query) {
        try {
          for (;;) {
            const page = await ok(
              api.GET("/v1/audit", { params: { query: { ...t.query, limit: PAGE, ...(t.cursor ? { cursor: t.cursor } : {}) } } }),
            );
            if (stopped || t !== tail.current) return;
            const fresh = page.events.filter((e) => !t.seen.has(e.id));
            for (const e of fresh) t.seen.add(e.id);
            if (fresh.length) setEvents((list) => [...list, ...fresh]);
            if (!page.next_cursor) break;
            t.cursor = page.next_cursor;
          }
          setCursor(null);
          setError(undefined);
        } catch (err) {
          if (!stopped) setError(err);
        }
      }
      if (!stopped) timer = setTimeout(poll, POLL_MS);
    };
    poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [api, live]);

  const field = (key: keyof Filters, label: string, hint?: string) => {
    const onInput = (e: { currentTarget: HTMLInputElement }) => {
      const value = e.currentTarget.value;
      setFilters((f) => ({ ...f, [key]: value }));
    };
    const id = `audit-${key}`;
    return (
      <div class="field">
        <label for={id}>{label}</label>
        {key === "since" || key === "until" ? (
          <input id={id} type="datetime-local" value={filters[key]} onInput={onInput} />
        ) : (
          <input id={id} type="text" value={filters[key]} placeholder={hint} onInput={onInput} />
        )}
      </div>
    );
  };

  return (
    <section>
      <PageTitle>Audit</PageTitle>
      <form class="filters" aria-label="Audit filters" onSubmit={(e) => e.preventDefault()}>
        {field("tenant", "Tenant", "slug or id")}
        {field("product", "Product")}
        {field("actor", "Actor")}
        {field("action", "Action", "e.g. tenant.created")}
        {field("since", "Since")}
        {field("until", "Until")}
        <div class="field check">
          <input id="audit-live" type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} />
          <label for="audit-live">Live</label>
        </div>
      </form>
      <p class="muted small">Oldest first. Since and Until are in your local time; Live adds new events as they are written.</p>
      <ErrorNote error={error} />
      <AuditTable events={events} caption="Audit events, oldest first" />
      <p class="muted" aria-live="polite">
        {loading
          ? "Loading…"
          : events.length === 0
            ? "No events match."
            : `${events.length} events shown${live ? ", following live" : ""}.`}
      </p>
      {cursor && !loading ? (
        <button type="button" onClick={loadMore}>
          Load more
        </button>
      ) : null}
    </section>
  );
}
