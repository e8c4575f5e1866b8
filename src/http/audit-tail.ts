import type { FastifyBaseLogger } from "fastify";
import type { AuditEvent } from "../schemas/audit.js";
import { auditList, auditTailPage } from "../store/audit.js";
import type { Db } from "../store/db.js";
import { FANOUT_SLICE, type SseStream, yieldLoop } from "./sse.js";

/** What one audit stream asks for: the filters of GET /v1/audit that a stream takes. */
export interface StreamFilter {
  tenant_id?: string;
  product?: string;
  actor_id?: string;
  action?: string;
}

interface Subscriber {
  stream: SseStream;
  filter: StreamFilter;
  /** Everything at or below this id has been sent to it, or does not match its filter. */
  after: bigint;
}

/** An event read by the tail, with its message serialised once for every subscriber. */
interface Entry {
  id: bigint;
  event: AuditEvent;
  message: Buffer;
}

export interface AuditTailOptions {
  /** Safety poll while anyone subscribes, besides the commit notifications. */
  pollMs: number;
  /** Events per store read (tail and catch-up). */
  page: number;
  /** Recent events kept in memory, so a subscriber resuming near the head needs no read of its own. */
  ringEvents: number;
  ringBytes: number;
  /** Catch-up reads that may run at once, whatever the number of resuming subscribers. */
  catchUpReads: number;
  /** A catching-up subscriber that does not take its page within this time is dropped. */
  stallMs: number;
}

export interface AuditTailCounters {
  /** A store statement run by the tail (reader "tail") or for one subscriber catching up ("catch_up"). */
  query(reader: "tail" | "catch_up", n: number): void;
}

const message = (e: AuditEvent) => Buffer.from(`id: ${e.id}\nevent: audit\ndata: ${JSON.stringify(e)}\n\n`);

const matches = (f: StreamFilter, e: AuditEvent) =>
  (f.tenant_id === undefined || f.tenant_id === e.tenant_id) &&
  (f.product === undefined || f.product === e.product) &&
  (f.actor_id === undefined || f.actor_id === e.actor_id) &&
  (f.action === undefined || f.action === e.action);

/**
 * One reader of the settled audit log per instance, shared by every
 * `/v1/audit/stream` subscriber (docs/webhooks.md, "Streams"). Woken by the
 * commit notifications and a slow poll, it reads each committed event once
 * (`auditTailPage`: only below the horizon, so it never steps over an event
 * that commits late) and hands it to every live subscriber in memory, with
 * the subscriber's filter applied there. The database work per committed
 * event is therefore the same for one subscriber as for thousands.
 *
 * A subscriber resuming behind the tail catches up first: from the ring of
 * recent events when it reaches back that far, else with its own paged
 * reads, at most `catchUpReads` of them at once on the instance, paced by
 * its socket. Once level with the tail it joins the live set, in the same
 * turn of the event loop, so no event falls between the two.
 */
export class AuditTail {
  /** Every event at or below this id has been read (null: not following; the next read starts at the head). */
  private position: bigint | null = null;
  /** The ring holds every event in (ringFrom, position]. */
  private ringFrom = 0n;
  private ring: Entry[] = [];
  private ringBytes = 0;
  private readonly live = new Set<Subscriber>();
  private holders = 0;
  /** Bumped when the tail stops following, so a read in flight from before does not write its stale position back. */
  private generation = 0;
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private poll: NodeJS.Timeout | undefined;
  private catchUpsRunning = 0;
  private readonly catchUpWaiters: (() => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly log: FastifyBaseLogger,
    private readonly opts: AuditTailOptions,
    private readonly counters: AuditTailCounters = { query() {} },
  ) {}

  /** Commit notification: events may have settled. */
  wake(): void {
    if (this.holders > 0) void this.read().catch(() => {});
  }

  /** Keep the tail following while the caller holds it (one hold per stream). Returns the release. */
  hold(): () => void {
    this.holders++;
    if (this.holders === 1) {
      this.poll = setInterval(() => {
        this.read().catch((err: Error) => this.log.warn({ err: { message: err.message } }, "audit stream: tail read failed; retrying"));
      }, this.opts.pollMs);
      this.poll.unref();
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holders--;
      if (this.holders === 0) {
        clearInterval(this.poll);
        this.generation++;
        this.position = null;
        this.ring = [];
        this.ringBytes = 0;
      }
    };
  }

  /**
   * Read up to the settled head as of now (one read, shared by every caller
   * that asks meanwhile), and return the id the tail has read through.
   */
  async sync(): Promise<bigint> {
    for (;;) {
      if (this.holders === 0) throw new Error("audit tail: sync() without a hold");
      await this.read();
      if (this.position !== null) return this.position;
    }
  }

  /**
   * Start delivering to `stream` what follows `after` (null: what follows
   * the tail's position, the settled head once `sync` returned). Returns at
   * once; a catch-up runs on its own and closes the stream if the store
   * fails (the client resumes with Last-Event-ID and misses nothing).
   */
  subscribe(stream: SseStream, filter: StreamFilter, after: bigint | null): void {
    if (stream.closed) return;
    const sub: Subscriber = { stream, filter, after: after ?? this.position ?? 0n };
    stream.onClose(() => this.live.delete(sub));
    if (after === null && this.position !== null) {
      this.live.add(sub);
      return;
    }
    void this.catchUp(sub).catch((err: Error) => {
      this.log.warn({ err: { message: err.message } }, "audit stream: catch-up read failed; closing the stream");
      stream.close();
    });
  }

  get subscribers(): number {
    return this.live.size;
  }

  private read(): Promise<void> {
    if (!this.running) {
      this.running = this.run().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    this.queued ??= this.running
      .catch(() => {})
      .then(() => {
        this.queued = null;
        return this.read();
      });
    return this.queued;
  }

  private async run(): Promise<void> {
    const generation = this.generation;
    if (this.position === null) {
      const [r] = await this.db.query<{ head: string }>("SELECT (audit_horizon() - 1)::text AS head");
      this.counters.query("tail", 1);
      if (!r) throw new Error("audit_horizon() returned no row");
      if (generation !== this.generation || this.holders === 0) return;
      this.position = BigInt(r.head);
      this.ringFrom = this.position;
      return;
    }
    for (;;) {
      const from = this.position;
      const { events, through } = await auditTailPage(this.db, from.toString(), this.opts.page);
      this.counters.query("tail", 2);
      if (generation !== this.generation || this.position !== from) return;
      const entries = events.map((e) => ({ id: BigInt(e.id), event: e, message: message(e) }));
      const upTo = BigInt(through);
      this.position = upTo;
      this.remember(entries);
      if (entries.length > 0) await this.dispatch(entries, upTo);
      if (events.length < this.opts.page) return;
    }
  }

  private remember(entries: Entry[]): void {
    for (const e of entries) {
      this.ring.push(e);
      this.ringBytes += e.message.length;
    }
    let drop = 0;
    while (
      drop < this.ring.length &&
      (this.ring.length - drop > this.opts.ringEvents || (this.ringBytes > this.opts.ringBytes && drop < this.ring.length - 1))
    ) {
      const gone = this.ring[drop] as Entry;
      this.ringBytes -= gone.message.length;
      this.ringFrom = gone.id;
      drop++;
    }
    if (drop > 0) this.ring = this.ring.slice(drop);
  }

  /** Hand a batch to every live subscriber, a slice at a time, the event loop free in between. */
  private async dispatch(entries: Entry[], upTo: bigint): Promise<void> {
    const subs = [...this.live];
    for (let i = 0; i < subs.length; i += FANOUT_SLICE) {
      if (i > 0) await yieldLoop();
      for (const sub of subs.slice(i, i + FANOUT_SLICE)) this.deliver(sub, entries, upTo);
    }
  }

  private deliver(sub: Subscriber, entries: Iterable<Entry>, upTo: bigint): void {
    if (sub.stream.closed) return;
    const due: Buffer[] = [];
    for (const e of entries) if (e.id > sub.after && matches(sub.filter, e.event)) due.push(e.message);
    if (due.length > 0) sub.stream.write(...due);
    if (upTo > sub.after) sub.after = upTo;
  }

  private async catchUp(sub: Subscriber): Promise<void> {
    for (;;) {
      if (sub.stream.closed) return;
      const position = this.position;
      if (position !== null && sub.after >= this.ringFrom) {
        // Level with the tail (or ahead: an id not issued yet), or close enough for the ring:
        // join the live set in this same turn, so no event falls in between.
        this.deliver(sub, this.ring, position);
        this.live.add(sub);
        return;
      }
      const floor = position ?? (await this.sync());
      const rows = await this.catchUpRead(sub);
      for (const e of rows) {
        if (!sub.stream.write(message(e))) return;
        sub.after = BigInt(e.id);
        // Paced by the socket: a reader that is catching up takes its pages as fast as it reads.
        if (!(await sub.stream.drained(this.opts.stallMs))) return;
      }
      // A short page means every matching event below the reader's horizon was in it,
      // and that horizon lies above the tail's position when the read began.
      if (rows.length < this.opts.page && floor > sub.after) sub.after = floor;
    }
  }

  /** One page for one subscriber, while holding one of the few catch-up permits. */
  private async catchUpRead(sub: Subscriber): Promise<AuditEvent[]> {
    while (this.catchUpsRunning >= this.opts.catchUpReads) {
      await new Promise<void>((r) => this.catchUpWaiters.push(r));
    }
    this.catchUpsRunning++;
    try {
      const rows = await auditList(this.db, { ...sub.filter, after: sub.after.toString(), limit: this.opts.page });
      this.counters.query("catch_up", 2);
      return rows;
    } finally {
      this.catchUpsRunning--;
      this.catchUpWaiters.shift()?.();
    }
  }
}
