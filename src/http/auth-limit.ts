/**
 * Counts failed authentications per client address in fixed windows. Past
 * the limit, the address's failing requests get 429 + Retry-After (a signal
 * to back off, cheap to serve) until its window ends; requests with a valid
 * token still pass. Blocking the whole address would let one pod with a
 * stale token take verify away from every service behind the same NAT, and
 * would buy nothing against guessing: tokens carry 128 bits or more.
 * Memory is bounded: past `maxKeys` addresses the oldest are forgotten.
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
