import type { DeliveryStatus, Webhook, WebhookDelivery } from "../schemas/webhook.js";
import type { Queryable } from "./db.js";
import { iso, isoOrNull } from "./rows.js";

/** Announced (on commit) when deliveries become due, so every instance's worker wakes. */
export const DELIVERY_CHANNEL = "tenant_registry_webhook_deliveries";
/** Announced by the audit_events_announce trigger (0006) when audit events commit. */
export const AUDIT_CHANNEL = "tenant_registry_audit";
/** The payload on DELIVERY_CHANNEL announcing (on commit) that an endpoint was created, changed or deleted. */
export const ENDPOINTS_CHANGED = "endpoints";

async function announceEndpoints(q: Queryable): Promise<void> {
  await q.query("SELECT pg_notify($1, $2)", [DELIVERY_CHANNEL, ENDPOINTS_CHANGED]);
}

/** Whether any endpoint is enabled: with none, the worker has nothing to do and runs no SQL. */
export async function webhookAnyEnabled(q: Queryable): Promise<boolean> {
  const [r] = await q.query<{ any: boolean }>("SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) AS any");
  return r?.any === true;
}

interface EndpointRow {
  [k: string]: unknown;
  id: string;
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
}

const ENDPOINT_COLUMNS = "id, url, events, description, enabled, created_at, updated_at";

const toWebhook = (r: EndpointRow): Webhook => ({
  id: r.id,
  url: r.url,
  events: r.events,
  description: r.description,
  enabled: r.enabled,
  created_at: iso(r.created_at),
  updated_at: iso(r.updated_at),
});

export interface EndpointInsert {
  id: string;
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
  secret: string;
  afterEventId: string;
}

export async function webhookInsert(q: Queryable, e: EndpointInsert): Promise<Webhook> {
  const [row] = await q.query<EndpointRow>(
    `INSERT INTO webhook_endpoints (id, url, events, description, enabled, secret, after_event_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${ENDPOINT_COLUMNS}`,
    [e.id, e.url, e.events, e.description, e.enabled, e.secret, e.afterEventId],
  );
  if (!row) throw new Error("webhook insert returned no row");
  await announceEndpoints(q);
  return toWebhook(row);
}

export async function webhookList(q: Queryable): Promise<Webhook[]> {
  const rows = await q.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at DESC, id DESC`);
  return rows.map(toWebhook);
}

export async function webhookFindById(q: Queryable, id: string, forUpdate = false): Promise<Webhook | undefined> {
  const [row] = await q.query<EndpointRow>(
    `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1${forUpdate ? " FOR UPDATE" : ""}`,
    [id],
  );
  return row ? toWebhook(row) : undefined;
}

export interface EndpointPatch {
  url?: string;
  events?: string[];
  description?: string | null;
  enabled?: boolean;
}

export async function webhookUpdate(q: Queryable, id: string, p: EndpointPatch): Promise<Webhook> {
  const [row] = await q.query<EndpointRow>(
    `UPDATE webhook_endpoints SET
       url = CASE WHEN $2 THEN $3 ELSE url END,
       events = CASE WHEN $4 THEN $5::text[] ELSE events END,
       description = CASE WHEN $6 THEN $7 ELSE description END,
       enabled = CASE WHEN $8 THEN $9::boolean ELSE enabled END,
       updated_at = now()
     WHERE id = $1 RETURNING ${ENDPOINT_COLUMNS}`,
    [
      id,
      p.url !== undefined,
      p.url ?? null,
      p.events !== undefined,
      p.events ?? null,
      p.description !== undefined,
      p.description ?? null,
      p.enabled !== undefined,
      p.enabled ?? null,
    ],
  );
  if (!row) throw new Error("webhook update returned no row");
  await announceEndpoints(q);
  return toWebhook(row);
}

/** Deletes the endpoint and (cascade) its deliveries. */
export async function webhookDelete(q: Queryable, id: string): Promise<boolean> {
  const rows = await q.query("DELETE FROM webhook_endpoints WHERE id = $1 RETURNING id", [id]);
  if (rows.length > 0) await announceEndpoints(q);
  return rows.length > 0;
}

/** The new secret signs from now on; the current one keeps signing until `overlapMs` from now. */
export async function webhookRotateSecret(q: Queryable, id: string, secret: string, overlapMs: number): Promise<Date> {
  const [row] = await q.query<{ expires: Date }>(
    `UPDATE webhook_endpoints
        SET previous_secret = secret, previous_secret_expires_at = now() + $3 * interval '1 millisecond',
            secret = $2, updated_at = now()
      WHERE id = $1 RETURNING previous_secret_expires_at AS expires`,
    [id, secret, overlapMs],
  );
  if (!row) throw new Error("webhook rotate returned no row");
  return row.expires;
}

interface DeliveryRow {
  [k: string]: unknown;
  id: string;
  event_id: string | null;
  event_type: string;
  status: DeliveryStatus;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: Date;
  created_at: Date;
  delivered_at: Date | null;
}

const DELIVERY_COLUMNS =
  "id, event_id::text AS event_id, event_type, status, attempts, last_status_code, last_error, next_attempt_at, created_at, delivered_at";

const toDelivery = (r: DeliveryRow): WebhookDelivery => ({
  id: r.id,
  event_id: r.event_id,
  event_type: r.event_type,
  status: r.status,
  attempts: r.attempts,
  last_status_code: r.last_status_code,
  last_error: r.last_error,
  next_attempt_at: r.status === "succeeded" || r.status === "dead" ? null : iso(r.next_attempt_at),
  created_at: iso(r.created_at),
  delivered_at: isoOrNull(r.delivered_at),
});

export async function deliveryList(
  q: Queryable,
  f: { endpointId: string; status?: DeliveryStatus; before?: { createdAt: string; id: string }; limit: number },
): Promise<WebhookDelivery[]> {
  const rows = await q.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries
      WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2)
        AND ($3::timestamptz IS NULL OR (created_at, id) < ($3::timestamptz, $4::uuid))
      ORDER BY created_at DESC, id DESC LIMIT $5`,
    [f.endpointId, f.status ?? null, f.before?.createdAt ?? null, f.before?.id ?? null, f.limit],
  );
  return rows.map(toDelivery);
}

export async function deliveryFind(q: Queryable, endpointId: string, id: string): Promise<WebhookDelivery | undefined> {
  const [row] = await q.query<DeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 AND id = $2`, [
    endpointId,
    id,
  ]);
  return row ? toDelivery(row) : undefined;
}

/** A webhook.test message for one endpoint, due now. */
export async function deliveryInsertTest(q: Queryable, endpointId: string, messageId: string): Promise<string> {
  const [row] = await q.query<{ id: string }>(
    `INSERT INTO webhook_deliveries (endpoint_id, event_id, message_id, event_type) VALUES ($1, NULL, $2, 'webhook.test') RETURNING id`,
    [endpointId, messageId],
  );
  if (!row) throw new Error("delivery insert returned no row");
  await q.query("SELECT pg_notify($1, '')", [DELIVERY_CHANNEL]);
  return row.id;
}

/** Manual retry: due now, whatever its state; a running attempt's lease is left alone. */
export async function deliveryRetry(q: Queryable, endpointId: string, id: string): Promise<{ message_id: string } | undefined> {
  const [row] = await q.query<{ message_id: string }>(
    `UPDATE webhook_deliveries SET status = CASE WHEN status = 'pending' THEN 'pending' ELSE 'failed' END, next_attempt_at = now()
      WHERE endpoint_id = $1 AND id = $2 RETURNING message_id`,
    [endpointId, id],
  );
  if (row) await q.query("SELECT pg_notify($1, '')", [DELIVERY_CHANNEL]);
  return row;
}

/**
 * Fan the audit log out into deliveries, one batch: events above the
 * dispatch cursor and below the audit horizon (every id below it is settled,
 * docs/audit.md), matched against enabled endpoints. Run in a transaction.
 * Returns null when another instance holds the cursor, else how many events
 * were read (a full batch means there may be more) and deliveries made.
 */
export async function dispatchBatch(q: Queryable, limit: number): Promise<{ events: number; deliveries: number } | null> {
  const [cursor] = await q.query<{ after: string }>("SELECT after_event_id::text AS after FROM webhook_dispatch FOR UPDATE SKIP LOCKED");
  if (!cursor) return null;
  // A statement of its own before the read, so the read's snapshot holds every id below it.
  const [h] = await q.query<{ horizon: string }>("SELECT audit_horizon()::text AS horizon");
  if (!h) throw new Error("audit_horizon() returned no row");
  const settled = BigInt(h.horizon) - 1n;
  if (settled <= BigInt(cursor.after)) return { events: 0, deliveries: 0 };
  // Events at or below every enabled endpoint's start match none of them: skip straight past those.
  // Read after the horizon: an endpoint whose webhook.created id lies below it has committed, so it is seen here.
  const [s] = await q.query<{ start: string | null }>("SELECT min(after_event_id)::text AS start FROM webhook_endpoints WHERE enabled");
  if (!s?.start || BigInt(s.start) >= settled) {
    await q.query("UPDATE webhook_dispatch SET after_event_id = $1::bigint", [settled.toString()]);
    return { events: 0, deliveries: 0 };
  }
  if (BigInt(s.start) > BigInt(cursor.after)) cursor.after = s.start;
  const [r] = await q.query<{ last: string | null; n: number; made: number }>(
    `WITH ev AS (
       SELECT id, action FROM audit_events WHERE id > $1::bigint AND id < $2::bigint ORDER BY id LIMIT $3
     ), made AS (
       INSERT INTO webhook_deliveries (endpoint_id, event_id, message_id, event_type, created_at)
       SELECT w.id, ev.id, 'msg_' || ev.id, ev.action, date_trunc('milliseconds', now()) FROM ev
         JOIN webhook_endpoints w ON w.enabled AND ev.id > w.after_event_id AND webhook_matches(w.events, ev.action)
       -- An endpoint deleted meanwhile is skipped (its delete is waited for, then the row is gone); one
       -- not yet deleted cannot be until this commits, and then its deliveries go with it (cascade).
       FOR KEY SHARE OF w
       ON CONFLICT DO NOTHING RETURNING 1
     )
     SELECT (SELECT max(id) FROM ev)::text AS last, (SELECT count(*) FROM ev)::int AS n, (SELECT count(*) FROM made)::int AS made`,
    [cursor.after, h.horizon, limit],
  );
  if (!r) throw new Error("dispatch returned no row");
  // A short batch read everything below the horizon: move past it all.
  const next = r.n < limit || r.last === null ? (BigInt(h.horizon) - 1n).toString() : r.last;
  await q.query("UPDATE webhook_dispatch SET after_event_id = $1::bigint", [next]);
  if (r.made > 0) await q.query("SELECT pg_notify($1, '')", [DELIVERY_CHANNEL]);
  return { events: r.n, deliveries: r.made };
}

export interface Claimed {
  id: string;
  endpoint_id: string;
  event_id: string | null;
  message_id: string;
  event_type: string;
  attempts: number;
  created_at: Date;
  url: string;
  secrets: string[];
}

/**
 * Lease due deliveries, oldest due first within each endpoint, the enabled
 * endpoints (those in `only`, when given) served in the same statement: at
 * most `allowed[id]` for the endpoints named, `otherwise` for the rest, and
 * `limit` in all. SKIP LOCKED and the lease
 * keep two instances off one delivery; a lease that lapsed (its instance
 * died) makes the delivery claimable again.
 */
export async function deliveryClaim(
  q: Queryable,
  opts: {
    allowed: Record<string, number>;
    otherwise: number;
    only: string[] | null;
    /** Endpoints taken after all the others (those failing): a chunked claim reaches the others first. */
    last?: string[];
    limit: number;
    leaseMs: number;
    token: string;
  },
): Promise<Claimed[]> {
  return q.query<Claimed & { [k: string]: unknown }>(
    `WITH picked AS (
       SELECT d.id FROM (
         SELECT w.id FROM webhook_endpoints w
          WHERE w.enabled AND ($5::uuid[] IS NULL OR w.id = ANY($5::uuid[]))
          ORDER BY w.id = ANY($7::uuid[])
       ) w CROSS JOIN LATERAL (
         SELECT id FROM webhook_deliveries d
          WHERE d.endpoint_id = w.id AND d.status IN ('pending', 'failed') AND d.next_attempt_at <= now()
            AND (d.lease_until IS NULL OR d.lease_until < now())
          ORDER BY d.next_attempt_at
          LIMIT greatest(0, coalesce(($1::jsonb ->> w.id::text)::int, $2::int))
          FOR UPDATE SKIP LOCKED
       ) d
       LIMIT $6
     ), claimed AS (
       UPDATE webhook_deliveries d SET lease_until = now() + $3 * interval '1 millisecond', lease_token = $4
         FROM picked WHERE d.id = picked.id
       RETURNING d.id, d.endpoint_id, d.event_id, d.message_id, d.event_type, d.attempts, d.created_at
     )
     SELECT c.id, c.endpoint_id, c.event_id::text AS event_id, c.message_id, c.event_type, c.attempts, c.created_at, w.url,
            CASE WHEN w.previous_secret IS NOT NULL AND w.previous_secret_expires_at > now()
                 THEN ARRAY[w.secret, w.previous_secret] ELSE ARRAY[w.secret] END AS secrets
       FROM claimed c JOIN webhook_endpoints w ON w.id = c.endpoint_id
      ORDER BY c.event_id NULLS FIRST`,
    [JSON.stringify(opts.allowed), opts.otherwise, opts.leaseMs, opts.token, opts.only, opts.limit, opts.last ?? []],
  );
}

/**
 * Extend the leases this instance still holds (id and one of its tokens) to
 * `leaseMs` from now; returns the ids renewed. One missing was completed,
 * deleted, or lapsed and was taken over: no longer ours.
 */
export async function deliveryRenew(q: Queryable, ids: readonly string[], tokens: readonly string[], leaseMs: number): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await q.query<{ id: string }>(
    `UPDATE webhook_deliveries SET lease_until = now() + $3 * interval '1 millisecond'
      WHERE id = ANY($1::uuid[]) AND lease_token = ANY($2::uuid[]) AND status IN ('pending', 'failed')
      RETURNING id`,
    [ids, tokens, leaseMs],
  );
  return rows.map((r) => r.id);
}

export interface AttemptOutcome {
  id: string;
  token: string;
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  /** After a failure: when to try again. */
  retryInMs: number;
  /** After a failure: give up once the next attempt would fall past this many ms after the delivery was made. */
  windowMs: number;
}

/**
 * Record attempts. Only the holder of the lease may: a late result from an
 * attempt whose lease expired (and was taken over) changes nothing.
 */
export async function deliveryComplete(q: Queryable, outcomes: readonly AttemptOutcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  await q.query(
    `UPDATE webhook_deliveries d SET
        attempts = d.attempts + 1,
        last_status_code = o.status_code,
        last_error = o.error,
        status = CASE WHEN o.ok THEN 'succeeded'
                      WHEN now() + o.retry_ms * interval '1 millisecond' > d.created_at + o.window_ms * interval '1 millisecond' THEN 'dead'
                      ELSE 'failed' END,
        delivered_at = CASE WHEN o.ok THEN now() ELSE d.delivered_at END,
        next_attempt_at = CASE WHEN o.ok THEN d.next_attempt_at ELSE now() + o.retry_ms * interval '1 millisecond' END,
        lease_until = NULL, lease_token = NULL
       FROM jsonb_to_recordset($1::jsonb) AS o(id uuid, token uuid, ok boolean, status_code int, error text, retry_ms bigint, window_ms bigint)
      WHERE d.id = o.id AND d.lease_token = o.token`,
    [
      JSON.stringify(
        outcomes.map((o) => ({
          id: o.id,
          token: o.token,
          ok: o.ok,
          status_code: o.statusCode,
          error: o.error,
          retry_ms: o.retryInMs,
          window_ms: o.windowMs,
        })),
      ),
    ],
  );
}

/** Give leases back unattempted (shutdown), so another instance may take them at once. */
export async function deliveryRelease(q: Queryable, ids: readonly string[], token: string): Promise<void> {
  if (ids.length === 0) return;
  await q.query("UPDATE webhook_deliveries SET lease_until = NULL, lease_token = NULL WHERE id = ANY($1::uuid[]) AND lease_token = $2", [
    ids,
    token,
  ]);
}

export async function deliveriesPrune(q: Queryable, retentionDays: number): Promise<number> {
  const rows = await q.query(
    `DELETE FROM webhook_deliveries WHERE id IN (
       SELECT id FROM webhook_deliveries WHERE created_at < now() - $1 * interval '1 day' LIMIT 10000) RETURNING 1`,
    [retentionDays],
  );
  return rows.length;
}

/** Deliveries waiting (pending or failed), for the queue-depth gauge. */
export async function deliveryQueueDepth(q: Queryable): Promise<number> {
  const [r] = await q.query<{ n: number }>("SELECT count(*)::int AS n FROM webhook_deliveries WHERE status IN ('pending', 'failed')");
  return r?.n ?? 0;
}
