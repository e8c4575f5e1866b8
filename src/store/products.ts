import type { Product } from "../schemas/catalog.js";
import type { Queryable } from "./db.js";

interface ProductRow {
  [k: string]: unknown;
  key: string;
  name: string;
  description: string;
  trial_days: number | null;
  retired: boolean;
}

/** A product as stored: retired ones stay, for the entitlements and keys that name them. */
export interface StoredProduct extends Product {
  retired: boolean;
}

const COLUMNS = "key, name, description, trial_days, retired_at IS NOT NULL AS retired";

const toProduct = (r: ProductRow): StoredProduct => ({
  key: r.key,
  name: r.name,
  description: r.description,
  trial_days: r.trial_days,
  retired: r.retired,
});

/** Any constant; held (transaction-scoped) while syncing so instances starting together sync one at a time. */
const CATALOG_SYNC_LOCK = 72_640_003;

export async function productLockForSync(q: Queryable): Promise<void> {
  await q.query("SELECT pg_advisory_xact_lock($1)", [CATALOG_SYNC_LOCK]);
}

/** Every product ever synced, retired ones included. */
export async function productListAll(q: Queryable): Promise<StoredProduct[]> {
  const rows = await q.query<ProductRow>(`SELECT ${COLUMNS} FROM products ORDER BY key`);
  return rows.map(toProduct);
}

/** GET /v1/catalog: what is on sale now. */
export async function productListCurrent(q: Queryable): Promise<StoredProduct[]> {
  const rows = await q.query<ProductRow>(`SELECT ${COLUMNS} FROM products WHERE retired_at IS NULL ORDER BY key`);
  return rows.map(toProduct);
}

export async function productFind(q: Queryable, key: string): Promise<StoredProduct | null> {
  const rows = await q.query<ProductRow>(`SELECT ${COLUMNS} FROM products WHERE key = $1`, [key]);
  return rows[0] ? toProduct(rows[0]) : null;
}

/** Inserts new products and overwrites existing ones (un-retiring them). */
export async function productUpsert(q: Queryable, products: readonly Product[]): Promise<void> {
  if (products.length === 0) return;
  await q.query(
    `INSERT INTO products (key, name, description, trial_days)
     SELECT p.key, p.name, p.description, p.trial_days
       FROM jsonb_to_recordset($1::jsonb) AS p(key text, name text, description text, trial_days integer)
     ON CONFLICT (key) DO UPDATE
        SET name = EXCLUDED.name, description = EXCLUDED.description, trial_days = EXCLUDED.trial_days,
            retired_at = NULL, updated_at = now()`,
    [JSON.stringify(products)],
  );
}

export async function productRetire(q: Queryable, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await q.query("UPDATE products SET retired_at = now(), updated_at = now() WHERE key = ANY($1::text[]) AND retired_at IS NULL", [keys]);
}
