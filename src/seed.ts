import { SYSTEM_ACTOR } from "./domain/actor.js";
import { createTenant } from "./domain/tenants.js";
import type { Db } from "./store/db.js";
import { tenantCount } from "./store/tenants.js";

/** The embedded default gives a new user something to look at: one demo tenant on an empty store. */
export async function seedDemo(db: Db): Promise<boolean> {
  return db.tx(async (q) => {
    await q.query("LOCK TABLE tenants IN SHARE ROW EXCLUSIVE MODE");
    if ((await tenantCount(q)) > 0) return false;
    await createTenant(q, { slug: "acme", name: "Acme Corporation", plan: "growth", kind: "demo" }, SYSTEM_ACTOR);
    return true;
  });
}
