import type pg from "pg";

export const PRODUCTS = Array.from({ length: 8 }, (_, i) => `prod-${i}`);
export const ACTORS = 2000;
export const ACTIONS = 40;

/** Products and tenants, then `rows` historical events over the last 30 days, as a restore would load them. */
export async function loadHistory(pool: pg.Pool, tenants: number, rows: number): Promise<string[]> {
  await pool.query("INSERT INTO products (key, name) SELECT unnest($1::text[]), 'Bench product'", [PRODUCTS]);
  const ids = (
    await pool.query<{ id: string }>(
      "INSERT INTO tenants (slug, name) SELECT 'bench-' || g, 'Bench tenant ' || g FROM generate_series(1, $1) g RETURNING id",
      [tenants],
    )
  ).rows.map((r) => r.id);
  const client = await pool.connect();
  try {
    // Triggers off (a restore keeps its ids and times). Skewed like real
    // traffic: a few big tenants, products and actors; rare actions.
    await client.query("SET session_replication_role = replica");
    await client.query(
      `INSERT INTO audit_events (id, tenant_id, product, actor_id, action, target_type, target_id, metadata, occurred_at, created_at)
       SELECT nextval('audit_events_id_seq'),
              CASE WHEN r1 < 0.05 THEN NULL ELSE t.ids[1 + floor(cardinality(t.ids) * r2 * r2)::int] END,
              CASE WHEN r3 < 0.2 THEN NULL ELSE ($3::text[])[1 + floor(8 * r3 * r3)::int] END,
              'user-' || floor(${ACTORS} * r4 * r4)::int || '@example.com',
              'action.' || floor(${ACTIONS} * r5 * r5 * r5 * r5)::int,
              'thing', 'thing-' || g,
              jsonb_build_object('n', g, 'ip', '10.0.' || (g % 250) || '.' || (g % 199)),
              ts - interval '1 second', ts
         FROM (SELECT $1::uuid[] AS ids) t,
              LATERAL (SELECT g, random() r1, random() r2, random() r3, random() r4, random() r5,
                              date_trunc('milliseconds', now() - interval '30 days' + (g::float8 / $2) * interval '30 days' - interval '1 minute') ts
                         FROM generate_series(1, $2) g) s`,
      [ids, rows, PRODUCTS],
    );
    await client.query("SET session_replication_role = origin");
    await client.query("VACUUM ANALYZE audit_events");
  } finally {
    client.release();
  }
  return ids;
}
