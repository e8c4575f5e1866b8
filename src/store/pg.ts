import pg from "pg";
import type { Db, Queryable, Row } from "./db.js";
import { translateDbError } from "./errors.js";

// int8 stays a string (pg's default); say so explicitly so both adapters agree.
const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8 ? (v: string) => v : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export interface PgOptions {
  url: string;
  poolSize: number;
  timeoutMs: number;
  /** Per-statement limit; defaults to timeoutMs. 0: none (migrations). */
  statementTimeoutMs?: number;
  /** How long a statement waits for a lock (lock_timeout); unset: the server's setting. */
  lockTimeoutMs?: number;
  onError: (err: Error) => void;
}

function wrap(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<R extends Row>(text: string, values?: readonly unknown[]) {
      try {
        const res = await client.query(text, values as unknown[] | undefined);
        return res.rows as R[];
      } catch (err) {
        throw translateDbError(err);
      }
    },
    async exec(sql: string) {
      try {
        await client.query(sql);
      } catch (err) {
        throw translateDbError(err);
      }
    },
  };
}

export function openPg(opts: PgOptions): Db {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize,
    connectionTimeoutMillis: opts.timeoutMs,
    // Fail a statement that hangs on a dead connection instead of holding the request.
    query_timeout: (opts.statementTimeoutMs ?? opts.timeoutMs) || undefined,
    statement_timeout: opts.statementTimeoutMs ?? opts.timeoutMs,
    ...(opts.lockTimeoutMs !== undefined ? { lock_timeout: opts.lockTimeoutMs } : {}),
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    types,
  });
  // An idle client losing its connection must not crash the process.
  pool.on("error", opts.onError);
  const base = wrap(pool);
  const listeners = new Set<PgListener>();

  return {
    engine: "postgres",
    ...base,
    async tx(fn) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw translateDbError(err);
      }
      let broken = false;
      // A checked-out client whose connection drops between statements emits
      // 'error'; unheard, that would crash the process.
      const onError = (err: Error) => {
        broken = true;
        opts.onError(err);
      };
      client.on("error", onError);
      try {
        await client.query("BEGIN");
        const out = await fn(wrap(client));
        await client.query("COMMIT");
        return out;
      } catch (err) {
        try {
          await client.query("ROLLBACK");
        } catch {
          broken = true;
        }
        throw translateDbError(err);
      } finally {
        client.off("error", onError);
        client.release(broken);
      }
    },
    async listen(channel, onMessage, onReset) {
      const l = new PgListener(opts, channel, onMessage, onReset);
      listeners.add(l);
      await l.start();
      return async () => {
        listeners.delete(l);
        await l.stop();
      };
    },
    stats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async close() {
      await Promise.all([...listeners].map((l) => l.stop()));
      await pool.end();
    },
  };
}

/**
 * A dedicated connection for LISTEN. When it drops, `onReset` tells the
 * subscriber that notifications may have been missed, and it reconnects with
 * backoff until stopped.
 */
class PgListener {
  private client: pg.Client | null = null;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: PgOptions,
    private readonly channel: string,
    private readonly onMessage: (payload: string) => void,
    private readonly onReset: (listening: boolean) => void,
  ) {}

  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (err) {
      this.opts.onError(err as Error);
      this.scheduleReconnect(250);
    }
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.opts.url, connectionTimeoutMillis: this.opts.timeoutMs, keepAlive: true });
    client.on("notification", (n) => {
      if (n.channel === this.channel) this.onMessage(n.payload ?? "");
    });
    const lost = (err?: Error) => {
      if (this.client !== client) return;
      this.client = null;
      if (err) this.opts.onError(err);
      client.end().catch(() => {});
      this.onReset(false);
      if (!this.stopped) this.scheduleReconnect(250);
    };
    client.on("error", lost);
    client.on("end", () => lost());
    await client.connect();
    await client.query(`LISTEN "${this.channel.replaceAll('"', '""')}"`);
    if (this.stopped) {
      await client.end();
      return;
    }
    this.client = client;
    // Anything may have happened while we were not listening.
    this.onReset(true);
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
    const c = this.client;
    this.client = null;
    if (c) await c.end().catch(() => {});
  }
}
