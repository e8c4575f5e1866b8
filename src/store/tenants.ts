import type { Tenant, TenantCreate, TenantPatch } from "../schemas/tenant.js";
import type { Queryable } from "./db.js";
import { iso, isoOrNull, type RowOf } from "./rows.js";

type TenantRow = RowOf<Tenant, "trial_ends_at" | "contract_start" | "contract_end" | "created_at" | "updated_at">;

const COLUMNS =
  "id, slug, name, plan, kind, status, sales_owner, erp_customer_id, stripe_customer_id, trial_ends_at, contract_start, contract_end, created_at, updated_at";

const toTenant = (r: TenantRow): Tenant => ({
  id: r.id,
  slug: r.slug,
  name: r.name,
  plan: r.plan,
  kind: r.kind,
  status: r.status,
  sales_owner: r.sales_owner,
  erp_customer_id: r.erp_customer_id,
  stripe_customer_id: r.stripe_customer_id,
  trial_ends_at: isoOrNull(r.trial_ends_at),
  contract_start: isoOrNull(r.contract_start),
  contract_end: isoOrNull(r.contract_end),
  created_at: iso(r.created_at),
  updated_at: iso(r.updated_at),
});

export async function tenantInsert(q: Queryable, t: TenantCreate): Promise<Tenant> {
  const rows = await q.query<TenantRow>(
    `INSERT INTO tenants (slug, name, plan, kind, sales_owner)
     VALUES ($1, $2, coalesce($3, 'starter'), coalesce($4, 'customer'), $5)
     RETURNING ${COLUMNS}`,
    [t.slug, t.name.trim(), t.plan ?? null, t.kind ?? null, t.sales_owner ?? null],
  );
  return toTenant(rows[0] as TenantRow);
}

export async function tenantFindById(q: Queryable, id: string): Promise<Tenant | null> {
  const rows = await q.query<TenantRow>(`SELECT ${COLUMNS} FROM tenants WHERE id = $1`, [id]);
  return rows[0] ? toTenant(rows[0]) : null;
}

/**
 * Locks the row until the transaction ends: status and entitlement changes
 * serialise on it. NO KEY UPDATE, since the id never changes: inserts that
 * reference the tenant (audit events, keys) take KEY SHARE and need not wait.
 */
export async function tenantFindByIdForUpdate(q: Queryable, id: string): Promise<Tenant | null> {
  const rows = await q.query<TenantRow>(`SELECT ${COLUMNS} FROM tenants WHERE id = $1 FOR NO KEY UPDATE`, [id]);
  return rows[0] ? toTenant(rows[0]) : null;
}

export async function tenantFindBySlug(q: Queryable, slug: string): Promise<Tenant | null> {
  const rows = await q.query<TenantRow>(`SELECT ${COLUMNS} FROM tenants WHERE slug = $1`, [slug]);
  return rows[0] ? toTenant(rows[0]) : null;
}

export async function tenantCount(q: Queryable): Promise<number> {
  const rows = await q.query<{ n: number }>("SELECT count(*)::int AS n FROM tenants");
  return rows[0]?.n ?? 0;
}

export interface TenantFilter {
  status?: Tenant["status"];
  plan?: Tenant["plan"];
  kind?: Tenant["kind"];
  q?: string;
  /** Keyset: rows strictly older than this (created_at, id). */
  before?: { createdAt: string; id: string };
  limit: number;
}

/** Newest first. Returns up to `limit` rows. */
export async function tenantList(q: Queryable, f: TenantFilter): Promise<Tenant[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    values.push(v);
    where.push(sql.replaceAll("?", `$${values.length}`));
  };
  if (f.status) add("status = ?", f.status);
  if (f.plan) add("plan = ?", f.plan);
  if (f.kind) add("kind = ?", f.kind);
  if (f.q) add("(slug ILIKE ? OR name ILIKE ?)", `%${escapeLike(f.q)}%`);
  if (f.before) {
    values.push(f.before.createdAt, f.before.id);
    where.push(`(created_at, id) < ($${values.length - 1}::timestamptz, $${values.length}::uuid)`);
  }
  values.push(f.limit);
  const rows = await q.query<TenantRow>(
    `SELECT ${COLUMNS} FROM tenants
     ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
     ORDER BY created_at DESC, id DESC
     LIMIT $${values.length}`,
    values,
  );
  return rows.map(toTenant);
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** The only columns a PATCH may touch (status moves through activate/cancel). */
export const TENANT_PATCHABLE = [
  "plan",
  "sales_owner",
  "erp_customer_id",
  "stripe_customer_id",
  "trial_ends_at",
  "contract_start",
  "contract_end",
] as const satisfies readonly (keyof TenantPatch)[];

/** Applies the given fields (null clears). Returns the updated tenant. */
export async function tenantUpdate(q: Queryable, id: string, patch: TenantPatch): Promise<Tenant> {
  const sets: string[] = [];
  const values: unknown[] = [id];
  for (const field of TENANT_PATCHABLE) {
    const value = patch[field];
    if (value === undefined) continue;
    values.push(value);
    sets.push(`${field} = $${values.length}`);
  }
  const rows = await q.query<TenantRow>(
    `UPDATE tenants SET ${sets.join(", ")}, updated_at = date_trunc('milliseconds', now())
     WHERE id = $1 RETURNING ${COLUMNS}`,
    values,
  );
  return toTenant(rows[0] as TenantRow);
}

export async function tenantSetStatus(q: Queryable, id: string, status: Tenant["status"]): Promise<Tenant> {
  const rows = await q.query<TenantRow>(
    `UPDATE tenants SET status = $2, updated_at = date_trunc('milliseconds', now())
     WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, status],
  );
  return toTenant(rows[0] as TenantRow);
}
