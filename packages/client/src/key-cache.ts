import type { RegistryPrincipal } from "./middleware.js";

/** A positive verify answer, as the cache keeps it. */
export interface CachedKey {
  principal: RegistryPrincipal;
  /** When it was stored (Date.now()): how long it is trusted depends on the change feed's state when it is read. */
  at: number;
  /** Never trusted from this moment on: the live TTL, or the key's own expiry if sooner. */
  expires: number;
  /** Read since the last eviction pass: gets a second chance before it is evicted. */
  hot: boolean;
}

/**
 * The middleware's cache of positive answers, keyed by the API key string
 * itself. A hit is one Map lookup and a flag write: no hashing, no
 * allocation, no reordering. Eviction is "second chance" (CLOCK), which
 * approximates least-recently-used without touching the Map on every hit:
 * when full, the oldest entry goes unless it was read since the last pass,
 * in which case it moves to the back once.
 */
export class KeyCache {
  private readonly entries = new Map<string, CachedKey>();

  constructor(private readonly max: number) {}

  get(key: string): CachedKey | undefined {
    return this.entries.get(key);
  }

  set(key: string, entry: CachedKey): void {
    this.entries.delete(key);
    while (this.entries.size >= this.max && this.entries.size > 0) this.evictOne();
    this.entries.set(key, entry);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Drops every entry whose value matches (a change notice naming a key or a tenant). */
  deleteWhere(matches: (entry: CachedKey) => boolean): void {
    for (const [key, entry] of this.entries) if (matches(entry)) this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private evictOne(): void {
    // Entries moved to the back are met again later in the same loop, cold by then: it ends.
    for (const [key, entry] of this.entries) {
      this.entries.delete(key);
      if (!entry.hot) return;
      entry.hot = false;
      this.entries.set(key, entry);
    }
  }
}
