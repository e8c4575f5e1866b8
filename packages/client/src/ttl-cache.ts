/**
 * A small least-recently-used map whose entries also expire, so the client
 * package needs no cache dependency. Map keeps insertion order: a hit is
 * re-inserted at the end, and the first entry is the least recently used.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();

  constructor(private readonly options: { max: number; ttl: number }) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (entry.expires <= Date.now()) return undefined;
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V, options: { ttl?: number } = {}): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expires: Date.now() + (options.ttl ?? this.options.ttl) });
    while (this.entries.size > this.options.max) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Drops every entry whose value matches (a change notice naming a key or a tenant). */
  deleteWhere(matches: (value: V) => boolean): void {
    for (const [key, entry] of this.entries) if (matches(entry.value)) this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
