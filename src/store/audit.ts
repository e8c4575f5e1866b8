import type { AuditEvent } from "../schemas/audit.js";
import { auditLogIndexes } from "./audit-log.js";
import type { Queryable } from "./db.js";
import { iso, type RowOf } from "./rows.js";

/**
 * An event to store: the stored event's fields less those the database
 * assigns (id, created_at); occurred_at defaults to created_at.
 */
export type AuditInput = Pick<AuditEvent, "actor_id" | "action"> &
  Partial<Pick<AuditEvent, "tenant_id" | "product" | "target_type" | "target_id" | "metadata">> & {
    occurred_at?: AuditEvent["occurred_at"] | null;
  };

/** A row as the drivers return it: the event, with its times as Date. */
type AuditRow = RowOf<Omit<AuditEvent, "log_index">, "occurred_at" | "created_at">;

const COLUMNS = "id::text AS id, tenant_id, product, actor_id, action, target_type, target_id, metadata, occurred_at, created_at";

const toEvent = (r: AuditRow): AuditEvent => ({
  id: r.id,
  tenant_id: r.tenant_id,
  product: r.product,
  actor_id: r.actor_id,
  action: r.action,
  target_type: r.target_type,
  target_id: r.target_id,
  metadata: r.metadata,
  occurred_at: iso(r.occurred_at),
  created_at: iso(r.created_at),
  log_index: null,
});

/** Events with their log_index filled in where they are sequenced (0009_audit_log.sql). */
async function withLogIndexes(q: Queryable, events: AuditEvent[]): Promise<AuditEvent[]> {
  const indexes = await auditLogIndexes(
    q,
    events.map((e) => e.id),
  );
  for (const e of events) e.log_index = indexes.get(e.id) ?? null;
  return events;
}

/**
 * Append events in the caller's transaction, so they commit with the change
 * they describe or not at all. Returns them in id order. The table's
 * trigger assigns id, created_at and a missing occurred_at (0004_audit.sql):
 * that is what keeps forward paging from skipping, whoever inserts.
 */
export async function auditInsert(q: Queryable, events: readonly AuditInput[]): Promise<AuditEvent[]> {
  if (events.length === 0) return [];
  const rows = await q.query<AuditRow>(
    `INSERT INTO audit_events (tenant_id, product, actor_id, action, target_type, target_id, metadata, occurred_at)
     SELECT e.tenant_id, e.product, e.actor_id, e.action, e.target_type, e.target_id, coalesce(e.metadata, '{}'),
            date_trunc('milliseconds', e.occurred_at)
       FROM jsonb_to_recordset($1::jsonb) AS e(tenant_id uuid, product text, actor_id text, action text,
            target_type text, target_id text, metadata jsonb, occurred_at timestamptz, ord int)
      ORDER BY e.ord
     RETURNING ${COLUMNS}`,
    [JSON.stringify(events.map((e, ord) => ({ ...e, ord })))],
  );
  return rows.map(toEvent).sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
}

/** Of the given tenant ids and product keys, those that do not exist. */
export async function auditMissingRefs(
  q: Queryable,
  tenantIds: readonly string[],
  products: readonly string[],
): Promise<{ tenants: string[]; products: string[] }> {
  if (tenantIds.length === 0 && products.length === 0) return { tenants: [], products: [] };
  const rows = await q.query<{ kind: "tenant" | "product"; ref: string }>(
    `SELECT 'tenant' AS kind, t.ref::text AS ref FROM unnest($1::uuid[]) AS t(ref)
      WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE id = t.ref)
     UNION ALL
     SELECT 'product', p.ref FROM unnest($2::text[]) AS p(ref)
      WHERE NOT EXISTS (SELECT 1 FROM products WHERE key = p.ref)`,
    [tenantIds, products],
  );
  return {
    tenants: rows.filter((r) => r.kind === "tenant").map((r) => r.ref),
    products: rows.filter((r) => r.kind === "product").map((r) => r.ref),
  };
}

export interface AuditFilter {
  tenant_id?: string;
  product?: string;
  actor_id?: string;
  action?: string;
  /** created_at >= since (inclusive), RFC 3339. */
  since?: string;
  /** created_at < until (exclusive), RFC 3339. */
  until?: string;
  /** Keyset: only ids above this one (decimal string). */
  after?: string;
  limit: number;
}

/**
 * How far apart in time two events may be stored out of id order: the
 * trigger's 5 s stall limit plus 1 ms of truncation, rounded up. Events
 * created at least this long before `since` all have lower ids than every
 * event in range, so the newest of them bounds the scan (and likewise
 * after `until`). See docs/audit.md, "Time ranges".
 */
const SKEW = "6 seconds";

interface Bounds {
  [k: string]: unknown;
  horizon: string;
  floor: string | null;
  ceiling: string | null;
}

/**
 * Ascending by id, up to `limit` events, only from the settled prefix of
 * the log. Two statements, in this order and not inside an older snapshot
 * (so: not in a REPEATABLE READ transaction): the horizon is computed
 * first, and the page's snapshot, taken afterwards, then holds every event
 * below it.
 */
export async function auditList(q: Queryable, f: AuditFilter): Promise<AuditEvent[]> {
  const [bounds] = await q.query<Bounds>(
    `SELECT audit_horizon()::text AS horizon,
            CASE WHEN $1::timestamptz IS NOT NULL THEN
              (SELECT id::text FROM audit_events WHERE created_at < $1::timestamptz - interval '${SKEW}'
                ORDER BY created_at DESC LIMIT 1) END AS floor,
            CASE WHEN $2::timestamptz IS NOT NULL THEN
              (SELECT id::text FROM audit_events WHERE created_at >= $2::timestamptz + interval '${SKEW}'
                ORDER BY created_at LIMIT 1) END AS ceiling`,
    [f.since ?? null, f.until ?? null],
  );
  if (!bounds) throw new Error("audit_horizon() returned no row");
  const after = maxId(f.after ?? "0", bounds.floor ?? "0");
  const before = bounds.ceiling !== null ? minId(bounds.horizon, bounds.ceiling) : bounds.horizon;

  const values: unknown[] = [after, before];
  const where = ["id > $1::bigint", "id < $2::bigint"];
  const add = (column: string, value: string | undefined, cast = "") => {
    if (value === undefined) return;
    values.push(value);
    where.push(`${column} $${values.length}${cast}`);
  };
  add("tenant_id =", f.tenant_id, "::uuid");
  add("product =", f.product);
  add("actor_id =", f.actor_id);
  add("action =", f.action);
  add("created_at >=", f.since, "::timestamptz");
  add("created_at <", f.until, "::timestamptz");
  values.push(f.limit);
  const rows = await q.query<AuditRow>(
    // audit_events.id, not id: a bare name would sort by the text column of the select list.
    `SELECT ${COLUMNS} FROM audit_events WHERE ${where.join(" AND ")} ORDER BY audit_events.id LIMIT $${values.length}`,
    values,
  );
  return withLogIndexes(q, rows.map(toEvent));
}

/**
 * The next slice of the whole log for a tail that follows it (the audit
 * streams read it once per instance and fan it out): up to `limit` events
 * above `after`, all from the settled prefix, as `auditList` reads it. The
 * returned `through` is the id the tail has now seen everything up to: the
 * last event when the page is full, else the settled head (horizon - 1), so
 * the tail steps over ids that will never exist as well.
 */
export async function auditTailPage(q: Queryable, after: string, limit: number): Promise<{ events: AuditEvent[]; through: string }> {
  const [bounds] = await q.query<{ horizon: string }>("SELECT audit_horizon()::text AS horizon");
  if (!bounds) throw new Error("audit_horizon() returned no row");
  const rows = await q.query<AuditRow>(
    `SELECT ${COLUMNS} FROM audit_events WHERE id > $1::bigint AND id < $2::bigint ORDER BY audit_events.id LIMIT $3`,
    [after, bounds.horizon, limit],
  );
  const events = rows.map(toEvent);
  const last = events[events.length - 1];
  const through = last && events.length >= limit ? last.id : maxId(after, (BigInt(bounds.horizon) - 1n).toString());
  return { events, through };
}

const maxId = (a: string, b: string) => (BigInt(a) >= BigInt(b) ? a : b);
const minId = (a: string, b: string) => (BigInt(a) <= BigInt(b) ? a : b);

/** Events by id, as GET /v1/audit shows them (webhook payloads); `withLogIndex: false` leaves log_index null. */
export async function auditFindByIds(q: Queryable, ids: readonly string[], { withLogIndex = true } = {}): Promise<Map<string, AuditEvent>> {
  if (ids.length === 0) return new Map();
  const rows = await q.query<AuditRow>(`SELECT ${COLUMNS} FROM audit_events WHERE id = ANY($1::bigint[])`, [ids]);
  const events = rows.map(toEvent);
  return new Map((withLogIndex ? await withLogIndexes(q, events) : events).map((e) => [e.id, e]));
}

/**
 * The leaf paths (the sequencer, GET /v1/audit/log/entries) read times as
 * UTC text and print them as toISOString() would print the Date the
 * driver makes of them: parsing a Date and printing it again was a fifth
 * of a leaf's cost. Only text that is plainly "YYYY-MM-DD hh:mm:ss[.f]"
 * with a year from 1000 and at most milliseconds takes this path; any
 * other row (microseconds, far years, another DateStyle) is read again
 * the usual way, so both paths give the same strings.
 */
const LEAF_COLUMNS =
  "id::text AS id, tenant_id, product, actor_id, action, target_type, target_id, metadata, " +
  "(occurred_at AT TIME ZONE 'UTC')::text AS occurred_at, (created_at AT TIME ZONE 'UTC')::text AS created_at";
type LeafRow = Omit<AuditEvent, "log_index"> & { [k: string]: unknown };
const PLAIN_UTC = /^([1-9]\d{3}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,3}))?$/;

function plainIso(text: string): string | undefined {
  const m = PLAIN_UTC.exec(text);
  if (!m) return undefined;
  return `${m[1]}T${m[2]}.${(m[3] ?? "").padEnd(3, "0")}Z`;
}

async function leafEvents(q: Queryable, rows: LeafRow[]): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  const odd: number[] = [];
  for (const r of rows) {
    const occurred = plainIso(r.occurred_at);
    const created = plainIso(r.created_at);
    if (occurred === undefined || created === undefined) odd.push(out.length);
    out.push({ ...r, occurred_at: occurred ?? "", created_at: created ?? "", log_index: null });
  }
  if (odd.length > 0) {
    const again = await auditFindByIds(
      q,
      odd.map((i) => (out[i] as AuditEvent).id),
      { withLogIndex: false },
    );
    for (const i of odd) {
      const e = again.get((out[i] as AuditEvent).id);
      if (!e) throw new Error(`audit event ${(out[i] as AuditEvent).id} vanished while read`);
      out[i] = e;
    }
  }
  return out;
}

/**
 * The events with ids from `first` to `last`, by id: one range scan of the
 * primary key, for the entries of the log (whose ids ascend), cheaper than
 * looking up each id. Without log_index.
 */
export async function auditFindBetween(q: Queryable, first: string, last: string): Promise<Map<string, AuditEvent>> {
  const rows = await q.query<LeafRow>(`SELECT ${LEAF_COLUMNS} FROM audit_events WHERE id >= $1::bigint AND id <= $2::bigint`, [
    first,
    last,
  ]);
  return new Map((await leafEvents(q, rows)).map((e) => [e.id, e]));
}

/**
 * Up to `limit` events above `afterId` and below the audit horizon, in id
 * order: what the sequencer may append. As in auditList, the horizon is
 * read first and the rows in a later statement, so none can be missing.
 */
export async function auditSettledAfter(q: Queryable, afterId: string, limit: number): Promise<AuditEvent[]> {
  const [h] = await q.query<{ horizon: string }>("SELECT audit_horizon()::text AS horizon");
  if (!h) throw new Error("audit_horizon() returned no row");
  const rows = await q.query<LeafRow>(
    `SELECT ${LEAF_COLUMNS} FROM audit_events WHERE id > $1::bigint AND id < $2::bigint ORDER BY audit_events.id LIMIT $3`,
    [afterId, h.horizon, limit],
  );
  return leafEvents(q, rows);
}
