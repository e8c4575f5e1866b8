import { ok, type RegistryClient, type Tenant } from "./api.js";

export type TenantRef = Pick<Tenant, "id" | "slug" | "name">;

/** How many tenants the first look-up lists at once (the API's page maximum). */
const LIST = 200;
/** Tenants the list did not hold are fetched one by one, this many at a time. */
const PARALLEL = 4;

/**
 * Tenant ids resolved to slug and name, shared by every screen of a signed-in
 * tab. Ids asked for in the same tick are looked up together: the first
 * look-up lists the newest 200 tenants in one request (on most registries,
 * all of them); only ids that list did not hold are fetched by id, each
 * once. Screens that load tenants anyway feed it with `remember`.
 */
export class TenantDirectory {
  private readonly known = new Map<string, TenantRef | null>();
  private readonly wanted = new Set<string>();
  private readonly listeners = new Set<() => void>();
  private listed: Promise<void> | null = null;
  private scheduled = false;

  constructor(private readonly api: RegistryClient) {}

  /** The tenant, null when the registry does not know the id, undefined while it is being looked up. */
  get(id: string): TenantRef | null | undefined {
    if (!this.known.has(id)) this.want(id);
    return this.known.get(id);
  }

  remember(tenants: readonly TenantRef[]): void {
    for (const t of tenants) this.known.set(t.id, { id: t.id, slug: t.slug, name: t.name });
    this.notify();
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private want(id: string): void {
    this.wanted.add(id);
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      void this.resolve();
    });
  }

  private async resolve(): Promise<void> {
    const ids = [...this.wanted].filter((id) => !this.known.has(id));
    this.wanted.clear();
    if (ids.length === 0) return;
    // Every batch waits for the one list, so no id is fetched alone that the list would have brought.
    this.listed ??= ok(this.api.GET("/v1/tenants", { params: { query: { limit: LIST } } })).then(
      (page) => this.remember(page.tenants),
      // The per-id look-ups below then say what went wrong, id by id.
      () => undefined,
    );
    await this.listed;
    const missing = ids.filter((id) => !this.known.has(id));
    for (let i = 0; i < missing.length; i += PARALLEL) {
      await Promise.all(
        missing.slice(i, i + PARALLEL).map(async (id) => {
          try {
            this.remember([await ok(this.api.GET("/v1/tenants/{id}", { params: { path: { id } } }))]);
          } catch {
            // Gone or unreadable: shown by its id, still linked.
            this.known.set(id, null);
          }
        }),
      );
    }
    this.notify();
  }

  private notify(): void {
    for (const l of this.listeners) l();
  }
}
