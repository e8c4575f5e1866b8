import { once } from "node:events";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../domain/errors.js";

/**
 * Bytes that may wait for one subscriber (taken from the store but not
 * accepted by its socket) before it is disconnected (SPEC, Streams). A
 * subscriber that does not read costs at most this much memory.
 */
export const MAX_UNSENT_BYTES = 1024 * 1024;
/** How long a subscriber may stay past MAX_UNSENT_BYTES, and the amount past which it is cut at once. */
const OVER_GRACE_MS = 1000;
const HARD_UNSENT_BYTES = 4 * MAX_UNSENT_BYTES;

/** How many subscribers one fan-out slice writes to before it yields the event loop. */
export const FANOUT_SLICE = 100;

/**
 * One server-sent-events response. The socket's idle timeout is turned off
 * (a stream is quiet between events by design, and request timeouts meant
 * for ordinary requests must not cut it). Writes never wait: a subscriber
 * whose unsent bytes stay past MAX_UNSENT_BYTES for a second (or pass four
 * times that) is dropped, so one that does not read can neither hold memory
 * nor hold up the others. The messages written are shared buffers: a
 * thousand subscribers waiting for the same event hold it once.
 */
export class SseStream {
  closed = false;
  /** Set when the stream was cut for not reading (metrics, logs). */
  dropped = false;
  private overTimer: NodeJS.Timeout | undefined;
  private readonly closers = new Set<() => void>();

  constructor(
    private readonly req: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly onDrop: () => void = () => {},
  ) {}

  open(): void {
    this.reply.hijack();
    const raw = this.reply.raw;
    if (this.req.raw.socket.destroyed) {
      // The caller left while the stream was being set up.
      this.close();
      return;
    }
    this.req.raw.socket.setTimeout(0);
    this.req.raw.socket.setNoDelay(true);
    raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
      "x-content-type-options": "nosniff",
      "x-request-id": this.req.id,
    });
    // Headers now, not with the first event: the caller learns at once that it is subscribed.
    raw.write(": subscribed\n\n");
    this.req.raw.on("close", () => this.close());
    raw.on("error", () => this.close());
  }

  /** Run `fn` when the stream closes (at once if it has). Returns a function that cancels it. */
  onClose(fn: () => void): () => void {
    if (this.closed) fn();
    else this.closers.add(fn);
    return () => this.closers.delete(fn);
  }

  /** Queue messages without waiting; false when the stream is closed or was dropped for holding too much. */
  write(...chunks: (string | Buffer)[]): boolean {
    if (this.closed) return false;
    const raw = this.reply.raw;
    if (chunks.length > 1) raw.cork();
    for (const c of chunks) raw.write(c);
    if (chunks.length > 1) raw.uncork();
    const unsent = raw.writableLength;
    if (unsent > HARD_UNSENT_BYTES) {
      this.drop();
      return false;
    }
    if (unsent > MAX_UNSENT_BYTES && !this.overTimer) {
      // A burst may pass the limit for a reader that keeps up; one that still holds it a moment later does not read.
      this.overTimer = setTimeout(() => {
        this.overTimer = undefined;
        if (this.unsent > MAX_UNSENT_BYTES) this.drop();
      }, OVER_GRACE_MS);
      this.overTimer.unref();
    }
    return true;
  }

  /** Bytes written but not yet accepted by the socket. */
  get unsent(): number {
    return this.reply.raw.writableLength;
  }

  /**
   * For a subscriber catching up from the store, which paces itself: resolves
   * true once the socket can take more, false if the stream closed; drops
   * the subscriber if it does not read for `stallMs`.
   */
  async drained(stallMs: number): Promise<boolean> {
    if (this.closed) return false;
    // 'drain' only comes after a write that filled the buffer.
    if (!this.reply.raw.writableNeedDrain) return true;
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<"stalled">((r) => {
      timer = setTimeout(() => r("stalled"), stallMs);
    });
    let forget = () => {};
    const closed = new Promise<"closed">((r) => {
      forget = this.onClose(() => r("closed"));
    });
    const outcome = await Promise.race([once(this.reply.raw, "drain").then(() => "drained" as const), stalled, closed]);
    clearTimeout(timer);
    forget();
    if (outcome === "stalled") this.drop();
    return outcome === "drained" && !this.closed;
  }

  /** Cut a subscriber that does not read: destroy the socket, so what it holds is freed at once. */
  drop(): void {
    if (this.closed) return;
    this.dropped = true;
    this.onDrop();
    this.req.log.warn({ unsent_bytes: this.unsent }, "stream: subscriber does not read; disconnected");
    this.close();
    this.req.raw.socket.destroy();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.overTimer);
    const closers = [...this.closers];
    this.closers.clear();
    for (const fn of closers) fn();
    if (!this.reply.raw.writableEnded) this.reply.raw.end();
  }
}

/**
 * Write one message to many streams, a slice at a time with the event loop
 * free in between, so a fan-out to thousands of sockets does not hold up
 * the requests being served meanwhile. The message is serialised once.
 */
export async function fanOut(streams: Iterable<SseStream>, message: Buffer): Promise<void> {
  const all = [...streams];
  for (let i = 0; i < all.length; i += FANOUT_SLICE) {
    if (i > 0) await yieldLoop();
    for (const s of all.slice(i, i + FANOUT_SLICE)) s.write(message);
  }
}

export const yieldLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * Stream slots per instance, `/v1/audit/stream` and `/v1/internal/changes`
 * together: at most `perPrincipal` per principal (beyond: 429) and `max` in
 * all (beyond: 503), both with Retry-After. Taken before a stream opens.
 */
export class StreamSlots {
  private total = 0;
  private readonly byPrincipal = new Map<string, number>();

  constructor(
    readonly max: number,
    readonly perPrincipal: number,
  ) {}

  /** A slot for `principal`, or the problem that refuses it. Returns its release (idempotent). */
  take(principal: string): () => void {
    const held = this.byPrincipal.get(principal) ?? 0;
    if (held >= this.perPrincipal) {
      throw new AppError(
        "rate_limited",
        `this principal holds ${held} streams on this instance, the most it may (STREAM_MAX_PER_PRINCIPAL); close one or retry later`,
        { retryAfterSeconds: 5 },
      );
    }
    if (this.total >= this.max) {
      throw new AppError("unavailable", "this instance holds as many streams as it may (STREAM_MAX); retry later", {
        retryAfterSeconds: 5,
      });
    }
    this.total++;
    this.byPrincipal.set(principal, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const n = (this.byPrincipal.get(principal) ?? 1) - 1;
      if (n === 0) this.byPrincipal.delete(principal);
      else this.byPrincipal.set(principal, n);
    };
  }

  get open(): number {
    return this.total;
  }
}
