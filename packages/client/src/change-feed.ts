/** Heartbeats this far apart mean the feed is not live (the registry sends one at least every second). */
export const FEED_SILENCE_MS = 2000;

export interface ChangeFeedOptions {
  url: string;
  token: string;
  fetch?: typeof fetch;
}

/**
 * The registry's change feed (GET /v1/internal/changes, server-sent events),
 * read with fetch: `invalidate` notices name a key or tenant whose cached
 * answers must go; heartbeats prove the feed is live. Reconnects after a
 * drop or 2 s of silence; each (re)connection drops every cached answer, as
 * notices may have been missed meanwhile.
 */
export class ChangeFeed {
  onInvalidate: (change: { key_id?: unknown; tenant_id?: unknown }) => void = () => {};
  /** Bumped by every notice and every change of liveness. */
  epoch = 0;
  /** When the last heartbeat arrived (Date.now()), 0 while not connected. */
  beatAt = 0;
  private connectedAt = 0;
  private started = false;
  private stopped = false;
  private abort: AbortController | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly options: ChangeFeedOptions) {}

  /** Live at `now`: a heartbeat within the last 2 s. */
  live(now = Date.now()): boolean {
    return this.beatAt > 0 && now - this.beatAt <= FEED_SILENCE_MS;
  }

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.watchdog = setInterval(() => {
      if (this.abort && Date.now() - Math.max(this.beatAt, this.connectedAt) > FEED_SILENCE_MS) this.abort.abort();
    }, 250);
    this.watchdog.unref?.();
    void this.run();
  }

  close(): void {
    this.stopped = true;
    if (this.watchdog) clearInterval(this.watchdog);
    this.abort?.abort();
  }

  private beat(): void {
    const now = Date.now();
    if (!this.live(now)) {
      // Live again: whatever was cached before may have missed a notice.
      this.epoch++;
      this.onInvalidate({});
    }
    this.beatAt = now;
  }

  private async run(): Promise<void> {
    const doFetch = this.options.fetch ?? fetch;
    const url = `${this.options.url.replace(/\/+$/, "")}/v1/internal/changes`;
    while (!this.stopped) {
      this.abort = new AbortController();
      const started = Date.now();
      // Silence counts from the moment of connecting: a feed that never beats is cut after 2 s.
      this.connectedAt = started;
      try {
        const res = await doFetch(url, {
          headers: { authorization: `Bearer ${this.options.token}`, accept: "text/event-stream" },
          signal: this.abort.signal,
        });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        const decoder = new TextDecoder();
        let buf = "";
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          for (let cut = buf.indexOf("\n\n"); cut >= 0; cut = buf.indexOf("\n\n")) {
            this.message(buf.slice(0, cut));
            buf = buf.slice(cut + 2);
          }
        }
      } catch {
        // Dropped, refused or silent: reconnect below.
      }
      this.abort = null;
      if (this.beatAt !== 0) {
        this.beatAt = 0;
        this.epoch++;
      }
      if (this.stopped) return;
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))).unref?.());
    }
  }

  private message(block: string): void {
    let event = "message";
    let data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
    if (event === "heartbeat") this.beat();
    else if (event === "invalidate") {
      this.epoch++;
      let change: { key_id?: unknown; tenant_id?: unknown } = {};
      try {
        const v: unknown = JSON.parse(data);
        if (typeof v === "object" && v !== null) change = v;
      } catch {
        // Unreadable: drop everything.
      }
      this.onInvalidate(change);
    }
  }
}
