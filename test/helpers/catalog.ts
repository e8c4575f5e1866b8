import { syncCatalog } from "../../src/domain/catalog.js";
import type { CatalogFileProduct } from "../../src/schemas/catalog.js";
import type { Db } from "../../src/store/db.js";

/** Products the catalog and entitlement tests rely on, independent of the shipped catalog.json. */
export const TEST_PRODUCTS: CatalogFileProduct[] = [
  { key: "tryable", name: "Tryable", description: "Has a 14-day trial.", trial_days: 14 },
  { key: "second", name: "Second", trial_days: 30 },
  { key: "plain", name: "Plain", description: "No trial." },
];

export const useCatalog = (db: Db, products: CatalogFileProduct[] = TEST_PRODUCTS) => db.tx((q) => syncCatalog(q, products));

/** Time travel: moves a trial back so that it ended `seconds` ago. */
export const endTrial = (db: Db, tenantId: string, product: string, seconds = 60) =>
  db.query(
    `UPDATE entitlements e
        SET created_at = e.created_at - s.d, updated_at = e.updated_at - s.d,
            trial_started_at = e.trial_started_at - s.d, trial_ends_at = e.trial_ends_at - s.d
       FROM (SELECT tenant_id, product, trial_ends_at - now() + make_interval(secs => $3) AS d FROM entitlements) s
      WHERE e.tenant_id = $1 AND e.product = $2 AND s.tenant_id = e.tenant_id AND s.product = e.product`,
    [tenantId, product, seconds],
  );
