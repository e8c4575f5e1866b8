import type { AuditEvent } from "../schemas/audit.js";
import type { Queryable } from "./db.js";
import { iso } from "./rows.js";

export interface AuditInput {
  tenant_id?: string | null;
  product?: string | null;
  actor_id: string;
  action: string;
  target_type?: string | null;
  target_id?: string | null;
  metadata?: Record<string, unknown>;
  occurred_at?: string | null;
}

interface AuditRow {
  [k: string]: unknown;
  id: string;
  tenant_id: string | null;
  product: string | null;
  actor_id: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  metadata: Record<string, unknown>;
  occurred_at: Date;
  created_at: Date;
}

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
});

/**
 * Append events in the caller's transaction, so they commit with the change
 * they describe or not at all. Returns them in id order.
 */
export async function auditInsert(q: Queryable, events: readonly AuditInput[]): Promise<AuditEvent[]> {
  if (events.length === 0) return [];
  const rows = await q.query<AuditRow>(
    `INSERT INTO audit_events (tenant_id, product, actor_id, action, target_type, target_id, metadata, occurred_at)
     SELECT e.tenant_id, e.product, e.actor_id, e.action, e.target_type, e.target_id, coalesce(e.metadata, '{}'),
            coalesce(e.occurred_at, now())
       FROM jsonb_to_recordset($1::jsonb) AS e(tenant_id uuid, product text, actor_id text, action text,
            target_type text, target_id text, metadata jsonb, occurred_at timestamptz, ord int)
      ORDER BY e.ord
     RETURNING ${COLUMNS}`,
    [JSON.stringify(events.map((e, ord) => ({ ...e, ord })))],
  );
  return rows.map(toEvent).sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
}
