/**
 * The narrow interface every SQL module is written against. Two adapters
 * implement it: `pg` (PostgreSQL, production) and PGlite (embedded). Both are
 * configured so rows come back with the same JS types: int8 as string,
 * timestamptz as Date, jsonb parsed.
 */
export type Row = Record<string, unknown>;

export interface Queryable {
  /** One parameterised statement. Postgres errors arrive translated (see errors.ts). */
  query<R extends Row = Row>(text: string, values?: readonly unknown[]): Promise<R[]>;
  /** Several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * NOTIFY `channel` with `payload` (pg_notify). Inside a transaction it is
   * sent on commit and never on rollback, as PostgreSQL does; this
   * instance's own subscribers (`Db.listen`) hear it at commit from memory
   * too, without waiting for the round trip through the database.
   * (Optional so that a test double need not have it; callers fall back to
   * `SELECT pg_notify`.)
   */
  notify?(channel: string, payload: string): Promise<void>;
}

/** How one `listen` subscription is doing, for metrics. */
export interface ChannelStatus {
  channel: string;
  /** Notifications flow (the last heartbeat came back in time). */
  listening: boolean;
  /** Milliseconds since the subscription last proved itself alive; null when it has no heartbeat (PGlite, in-process). */
  heartbeatAgeMs: number | null;
}

export type Engine = "postgres" | "pglite";

export interface Db extends Queryable {
  readonly engine: Engine;
  /** Run `fn` in one transaction: commit when it resolves, roll back when it throws. */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /**
   * Subscribe to a NOTIFY channel. `onReset(listening)` fires whenever the
   * subscription changes state: `false` when notifications may be lost from
   * now on, `true` once they flow (again). Either way, anything learnt from
   * earlier notifications may be stale. On PostgreSQL the subscription
   * proves itself alive with a heartbeat it sends itself on the channel
   * (never passed to `onMessage`); a missed deadline counts as a loss.
   */
  listen(channel: string, onMessage: (payload: string) => void, onReset: (listening: boolean) => void): Promise<() => Promise<void>>;
  /** Every live `listen` subscription's state. */
  channels?(): ChannelStatus[];
  /** Pool figures for metrics; PGlite has one connection. */
  stats(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}
