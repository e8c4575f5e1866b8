import type { CatalogFileProduct, Product } from "../schemas/catalog.js";
import { auditInsert } from "../store/audit.js";
import type { Queryable } from "../store/db.js";
import { productListAll, productLockForSync, productRetire, productUpsert } from "../store/products.js";
import { type Actor, auditActor, SYSTEM_ACTOR } from "./actor.js";

/** What a catalog sync changed, by product key. */
export interface CatalogChanges {
  added: string[];
  updated: string[];
  /** Back in the file after having been retired. */
  restored: string[];
  /** Gone from the file: hidden from the catalog, kept for existing entitlements. */
  retired: string[];
}

const normalise = (p: CatalogFileProduct): Product => ({
  key: p.key,
  name: p.name.trim(),
  description: p.description ?? "",
  trial_days: p.trial_days ?? null,
});

/**
 * Makes the stored catalog match the file. Runs under an advisory lock, so
 * instances starting together sync one after the other and the later ones
 * find nothing to do. Products are never deleted. When anything changed, one
 * `catalog.synced` audit event lists what, in the same transaction.
 */
export async function syncCatalog(q: Queryable, file: readonly CatalogFileProduct[], actor: Actor = SYSTEM_ACTOR): Promise<CatalogChanges> {
  await productLockForSync(q);
  const stored = new Map((await productListAll(q)).map((p) => [p.key, p]));
  const wanted = file.map(normalise);
  const changes: CatalogChanges = { added: [], updated: [], restored: [], retired: [] };
  const writes: Product[] = [];
  for (const p of wanted) {
    const before = stored.get(p.key);
    if (!before) changes.added.push(p.key);
    else if (before.retired) changes.restored.push(p.key);
    else if (before.name !== p.name || before.description !== p.description || before.trial_days !== p.trial_days)
      changes.updated.push(p.key);
    else continue;
    writes.push(p);
  }
  const keep = new Set(wanted.map((p) => p.key));
  changes.retired = [...stored.values()].filter((p) => !p.retired && !keep.has(p.key)).map((p) => p.key);
  if (writes.length === 0 && changes.retired.length === 0) return changes;

  await productUpsert(q, writes);
  await productRetire(q, changes.retired);
  await auditInsert(q, [{ action: "catalog.synced", target_type: "catalog", ...auditActor(actor, { ...changes }) }]);
  return changes;
}
