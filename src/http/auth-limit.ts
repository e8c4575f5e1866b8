/**
 * Counts failed authentications per client address in fixed windows. An
 * address over the limit is refused (429) on every protected route until its
 * window ends, whatever token it sends: refusing only the wrong guesses would
 * still tell a guesser when it was right. Memory is bounded: past `maxKeys`
 * addresses the oldest are forgotten.
 */
export class AuthFailureLimiter {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly maxKeys = 10_000,
  ) {}

  /** Seconds the address must wait, or 0 when it may try. */
  retryAfter(address: string, now = Date.now()): number {
    const w = this.windows.get(address);
    if (!w) return 0;
    if (w.resetAt <= now) {
      this.windows.delete(address);
      return 0;
    }
    return w.count >= this.limit ? Math.ceil((w.resetAt - now) / 1000) : 0;
  }

  recordFailure(address: string, now = Date.now()): void {
    const w = this.windows.get(address);
    if (w && w.resetAt > now) {
      w.count += 1;
      return;
    }
    this.windows.delete(address);
    this.windows.set(address, { count: 1, resetAt: now + this.windowMs });
    while (this.windows.size > this.maxKeys) {
      const oldest = this.windows.keys().next().value;
      if (oldest === undefined) break;
      this.windows.delete(oldest);
    }
  }

  get size(): number {
    return this.windows.size;
  }
}
