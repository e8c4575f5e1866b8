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
   * earlier notifications may be stale.
   */
  listen(channel: string, onMessage: (payload: string) => void, onReset: (listening: boolean) => void): Promise<() => Promise<void>>;
  /** Pool figures for metrics; PGlite has one connection. */
  stats(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}
