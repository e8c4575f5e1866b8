import { apiKeysTouch } from "../store/api-keys.js";
import type { Queryable } from "../store/db.js";
import type { Log } from "./log.js";

export interface LastUsedOptions {
  /** A row's last_used_at is written at most once per this interval (per instance). */
  intervalMs: number;
  /** How often pending writes go out, in one statement. */
  flushEveryMs: number;
}

export const LAST_USED_DEFAULTS: LastUsedOptions = { intervalMs: 60_000, flushEveryMs: 5_000 };

/** Writes a batch of uses: one statement setting each row's last_used_at (never backwards). */
export type TouchWriter = (q: Queryable, uses: readonly { id: string; at: string }[]) => Promise<void>;

/**
 * Coalesces `last_used_at` (of API keys, of managed tokens: `touch` says which table): verify only notes the use in memory; a timer
 * writes the noted uses in one batched UPDATE, off the request path, and
 * `stop()` writes what is still pending (shutdown). A failed write is kept
 * for the next flush rather than lost.
 */
export class LastUsedCoalescer {
  private readonly pending = new Map<string, number>();
  /** When each key's use was last noted for writing: the once-a-minute gate. */
  private readonly noted = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly db: Queryable,
    private readonly log: Log,
    private readonly opts: LastUsedOptions = LAST_USED_DEFAULTS,
    private readonly target: { touch: TouchWriter; what: string } = { touch: apiKeysTouch, what: "API key" },
  ) {}

  touch(keyId: string, now = Date.now()): void {
    const last = this.noted.get(keyId);
    if (last !== undefined && now - last < this.opts.intervalMs) return;
    this.noted.set(keyId, now);
    this.pending.set(keyId, now);
  }

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.opts.flushEveryMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Writes everything pending; concurrent calls share one write. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  private async write(): Promise<void> {
    const now = Date.now();
    for (const [id, at] of this.noted) if (now - at >= this.opts.intervalMs) this.noted.delete(id);
    if (this.pending.size === 0) return;
    const batch = [...this.pending];
    this.pending.clear();
    try {
      await this.target.touch(
        this.db,
        batch.map(([id, at]) => ({ id, at: new Date(at).toISOString() })),
      );
    } catch (err) {
      // Put the batch back unless a newer use was noted meanwhile; bounded by the number of keys.
      for (const [id, at] of batch) if (!this.pending.has(id)) this.pending.set(id, at);
      this.log.warn(
        { err: { message: (err as Error).message }, rows: batch.length },
        `could not write ${this.target.what} last_used_at; will retry`,
      );
    }
  }
}
