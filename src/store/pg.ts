import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import pg from "pg";
import type { ChannelStatus, Db, Queryable, Row } from "./db.js";
import { translateDbError } from "./errors.js";
import { type OwnNote, OwnNotes } from "./local-channels.js";

// int8 stays a string (pg's default); say so explicitly so both adapters agree.
const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8 ? (v: string) => v : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * TCP keepalive on every socket, probing after this much idle time, so a
 * peer that vanished is noticed in seconds rather than the OS default of
 * two hours. (The LISTEN connection also has its own heartbeat, below.)
 */
const KEEPALIVE_IDLE_MS = 5_000;

/** application_name of the LISTEN connections, so an operator (or a test) can tell them apart in pg_stat_activity. */
export const LISTEN_APPLICATION_NAME = "tenant-registry-listen";

export interface PgOptions {
  url: string;
  poolSize: number;
  /** The most a request waits for a connection plus its statements (DATABASE_TIMEOUT_MS). */
  timeoutMs: number;
  /** Per-statement limit; defaults to timeoutMs. 0: none (migrations). */
  statementTimeoutMs?: number;
  /** How long a statement waits for a lock (lock_timeout); unset: the server's setting. */
  lockTimeoutMs?: number;
  onError: (err: Error) => void;
  /** How often the LISTEN connection checks its heartbeat and sends the next one once the last is back (default 100 ms). */
  heartbeatMs?: number;
  /** A heartbeat not back within this long counts as a lost channel (default 750 ms). */
  heartbeatDeadlineMs?: number;
}

/** What is left of a deadline for the next statement; `undefined`: no deadline (migrations). */
const remaining = (deadline: number) => (Number.isFinite(deadline) ? Math.max(1, Math.ceil(deadline - performance.now())) : undefined);

/**
 * A failure of the connection rather than of the statement (no SQLSTATE
 * from the server: a read timeout, a reset, a closed socket): the client
 * cannot be trusted again.
 */
const connectionLost = (err: unknown) => !/^[0-9A-Z]{5}$/.test(String((err as { code?: unknown } | null)?.code ?? ""));

/** Whether a checked-out client failed in a way that rules out reusing it. */
interface ClientState {
  broken: Error | undefined;
}

/** Cuts a client's socket at once: `end()` waits for a goodbye a blackholed peer never sends. */
function destroy(client: pg.Client | pg.PoolClient): void {
  (client as unknown as { connection?: { stream?: Socket } }).connection?.stream?.destroy();
}

/** The notifications a transaction sent, each with the listener expecting it. */
type TxNotes = { listener: PgListener; own: OwnNote; payload: string }[];

const pidOf = (client: pg.PoolClient) => (client as unknown as { processID: number }).processID;

/** Statements on one checked-out client, each bounded by what is left of the caller's deadline. */
function onClient(
  client: pg.PoolClient,
  state: ClientState,
  deadline: number,
  notes: TxNotes | null,
  listeners: ReadonlySet<PgListener>,
): Required<Queryable> {
  const run = async (text: string, values?: readonly unknown[]) => {
    try {
      // query_timeout per statement is read by pg at run time; its types do not list it.
      const config = { text, values: values as unknown[] | undefined, query_timeout: remaining(deadline) } as pg.QueryConfig;
      return await client.query(config);
    } catch (err) {
      if (connectionLost(err)) state.broken ??= err instanceof Error ? err : new Error(String(err));
      throw translateDbError(err);
    }
  };
  return {
    async query<R extends Row>(text: string, values?: readonly unknown[]) {
      return (await run(text, values)).rows as R[];
    },
    async exec(sql: string) {
      await run(sql);
    },
    async notify(channel, payload) {
      const mine = [...listeners].filter((l) => l.channel === channel);
      if (!notes) {
        // Autocommit: committed once it returns. Expect the copy first, so an early one is recognised.
        const expected = mine.map((listener) => ({ listener, own: listener.own.expect(pidOf(client), payload) }));
        try {
          await run("SELECT pg_notify($1, $2)", [channel, payload]);
        } catch (err) {
          for (const e of expected) e.listener.own.forget(e.own);
          throw err;
        }
        for (const e of expected) e.listener.own.committed(e.own, payload);
        return;
      }
      // PostgreSQL folds identical notifications of one transaction into one; so does this.
      const fresh = mine.filter((l) => !notes.some((n) => n.listener === l && n.payload === payload));
      for (const listener of fresh) notes.push({ listener, own: listener.own.expect(pidOf(client), payload), payload });
      await run("SELECT pg_notify($1, $2)", [channel, payload]);
    },
  };
}

export function openPg(opts: PgOptions): Db {
  const unitTimeoutMs = opts.statementTimeoutMs ?? opts.timeoutMs;
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize,
    connectionTimeoutMillis: opts.timeoutMs,
    // Each statement also gets what is left of its unit's deadline (see `withClient`); 0: none (migrations).
    query_timeout: unitTimeoutMs || undefined,
    statement_timeout: unitTimeoutMs,
    ...(opts.lockTimeoutMs !== undefined ? { lock_timeout: opts.lockTimeoutMs } : {}),
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
    types,
  });
  // An idle client losing its connection must not crash the process.
  pool.on("error", opts.onError);
  const listeners = new Set<PgListener>();

  /**
   * One deadline for the whole unit: waiting for a connection and every
   * statement after it share DATABASE_TIMEOUT_MS. A connection that failed
   * (a timeout on a socket that went silent, a reset) is destroyed rather
   * than returned to the pool, and gets no ROLLBACK: that would wait again.
   */
  async function withClient<T>(
    fn: (q: Required<Queryable>, state: ClientState, notes: TxNotes | null) => Promise<T>,
    inTx = false,
  ): Promise<T> {
    const deadline = unitTimeoutMs === 0 ? Number.POSITIVE_INFINITY : performance.now() + unitTimeoutMs;
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw translateDbError(err);
    }
    const state: ClientState = { broken: undefined };
    // A checked-out client whose connection drops between statements emits 'error'; unheard, that would crash the process.
    const onError = (err: Error) => {
      state.broken = err;
      opts.onError(err);
    };
    client.on("error", onError);
    const notes: TxNotes | null = inTx ? [] : null;
    try {
      return await fn(onClient(client, state, deadline, notes, listeners), state, notes);
    } finally {
      client.off("error", onError);
      if (state.broken) destroy(client);
      client.release(state.broken ?? false);
    }
  }

  return {
    engine: "postgres",
    query: <R extends Row>(text: string, values?: readonly unknown[]) => withClient((q) => q.query<R>(text, values)),
    exec: (sql) => withClient((q) => q.exec(sql)),
    notify: (channel, payload) => withClient((q) => q.notify(channel, payload)),
    tx: (fn) =>
      withClient(async (q, state, notes) => {
        await q.exec("BEGIN");
        let out: Awaited<ReturnType<typeof fn>>;
        try {
          out = await fn(q);
          await q.exec("COMMIT");
        } catch (err) {
          for (const n of notes ?? []) n.listener.own.forget(n.own);
          // A statement failed on a live connection: roll back. A dead one gets no ROLLBACK (it would wait
          // again); withClient destroys it.
          if (!state.broken) await q.exec("ROLLBACK").catch(() => {});
          throw err;
        }
        for (const n of notes ?? []) n.listener.own.committed(n.own, n.payload);
        return out;
      }, true),
    async listen(channel, onMessage, onReset) {
      const l = new PgListener(opts, channel, onMessage, onReset);
      listeners.add(l);
      await l.start();
      return async () => {
        listeners.delete(l);
        await l.stop();
      };
    },
    channels: () => [...listeners].map((l) => l.status()),
    stats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async close() {
      await Promise.all([...listeners].map((l) => l.stop()));
      await pool.end();
    },
  };
}

/** Heartbeat payloads start with this; no JSON payload does. */
const HEARTBEAT = "heartbeat:";

/**
 * A dedicated connection for LISTEN, proved alive continuously: every
 * `heartbeatMs` (once the previous one is back) it NOTIFYs itself on its
 * own channel, and a heartbeat that is not back within
 * `heartbeatDeadlineMs` of its sending means the channel is lost — a
 * socket that went silent (a NAT or firewall dropping an idle flow, a
 * failover) shows no error and no close, so only a round trip proves it.
 * When lost, `onReset(false)` tells the subscriber that notifications may
 * have been missed, the connection is destroyed, and it reconnects with
 * backoff until stopped; `onReset(true)` once it listens again.
 */
class PgListener {
  private client: pg.Client | null = null;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private beat: NodeJS.Timeout | null = null;
  private readonly id = randomUUID();
  private seq = 0;
  private inFlight = false;
  /** performance.now() of the last heartbeat that came back (or of the connect). */
  private lastHeard = 0;
  /** performance.now() when the heartbeat now awaited was sent; null when none is awaited. */
  private awaitedSince: number | null = null;
  private readonly heartbeatMs: number;
  private readonly deadlineMs: number;

  /** This instance's own notifications on the channel, delivered once whichever path is first. */
  readonly own: OwnNotes;

  constructor(
    private readonly opts: PgOptions,
    readonly channel: string,
    onMessage: (payload: string) => void,
    private readonly onReset: (listening: boolean) => void,
  ) {
    this.own = new OwnNotes(onMessage);
    this.heartbeatMs = opts.heartbeatMs ?? 100;
    this.deadlineMs = opts.heartbeatDeadlineMs ?? 750;
  }

  status(): ChannelStatus {
    return {
      channel: this.channel,
      listening: this.client !== null,
      heartbeatAgeMs: this.client ? Math.round(performance.now() - this.lastHeard) : null,
    };
  }

  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (err) {
      this.opts.onError(err as Error);
      this.scheduleReconnect(250);
    }
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.opts.url,
      application_name: LISTEN_APPLICATION_NAME,
      connectionTimeoutMillis: this.opts.timeoutMs,
      query_timeout: this.opts.timeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
    });
    client.on("notification", (n) => {
      if (n.channel !== this.channel) return;
      const payload = n.payload ?? "";
      if (payload.startsWith(HEARTBEAT)) {
        if (client === this.client && payload.startsWith(`${HEARTBEAT}${this.id}:`)) {
          this.lastHeard = performance.now();
          this.awaitedSince = null;
        }
        return;
      }
      this.own.fromDb(n.processId, payload);
    });
    client.on("error", (err) => this.lost(client, err));
    client.on("end", () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel.replaceAll('"', '""')}"`);
    } catch (err) {
      destroy(client);
      throw err;
    }
    if (this.stopped) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.lastHeard = performance.now();
    this.awaitedSince = null;
    this.inFlight = false;
    this.beat = setInterval(() => this.tick(client), this.heartbeatMs);
    this.beat.unref();
    // Anything may have happened while we were not listening.
    this.onReset(true);
  }

  /** A heartbeat not back within the deadline of its sending means the channel is lost. */
  private tick(client: pg.Client): void {
    if (client !== this.client) return;
    const late = () => this.awaitedSince !== null && performance.now() - this.awaitedSince > this.deadlineMs;
    if (late()) {
      // A timer can fire late after the event loop was busy, with the answer already in the socket: read I/O first.
      setImmediate(() => {
        if (client === this.client && late()) {
          this.lost(client, new Error(`a heartbeat on the LISTEN connection was not back within ${this.deadlineMs} ms`));
        }
      });
      return;
    }
    if (this.awaitedSince !== null || this.inFlight) return;
    this.inFlight = true;
    this.awaitedSince = performance.now();
    client
      .query("SELECT pg_notify($1, $2)", [this.channel, `${HEARTBEAT}${this.id}:${this.seq++}`])
      .catch(() => {})
      .finally(() => {
        if (client === this.client) this.inFlight = false;
      });
  }

  private lost(client: pg.Client, err?: Error): void {
    if (this.client !== client) return;
    this.client = null;
    if (this.beat) clearInterval(this.beat);
    this.beat = null;
    if (err) this.opts.onError(err);
    destroy(client);
    this.own.clear();
    this.onReset(false);
    if (!this.stopped) this.scheduleReconnect(250);
  }

  private scheduleReconnect(ms: number): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect().catch((err: Error) => {
        this.opts.onError(err);
        this.scheduleReconnect(Math.min(ms * 2, 5000));
      });
    }, ms);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.beat) clearInterval(this.beat);
    const c = this.client;
    this.client = null;
    if (c) {
      // A polite goodbye, but never wait on a silent socket for it.
      const ended = c.end().catch(() => {});
      const cut = new Promise<void>((r) => setTimeout(r, 1000).unref());
      await Promise.race([ended, cut]);
      destroy(c);
    }
  }
}
