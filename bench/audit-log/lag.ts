import type pg from "pg";
import type { Seen } from "./pace.js";

export const quantile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;

export interface LagSummary {
  events: number;
  /** Seconds from created_at to the first poll that saw a checkpoint covering the event. */
  p50: number;
  p99: number;
  max: number;
  /** p99 over the events of the first and the last third of the window (by created_at): a growing lag shows here. */
  p99First: number;
  p99Last: number;
  /** The same from the checkpoint row's signed_at (now() of the round's transaction: its start, before the commit). */
  p99SignedAt: number;
}

/**
 * The lag of every event with id above `afterId`, once all are sequenced.
 * The log is dense and in id order, so an event's log_index is its rank
 * among all events; it is in the first checkpoint whose size exceeds it.
 */
export async function eventLags(pool: pg.Pool, afterId: string, seen: readonly Seen[]): Promise<LagSummary> {
  const before = Number(
    (await pool.query<{ n: string }>("SELECT count(*)::text AS n FROM audit_events WHERE id <= $1::bigint", [afterId])).rows[0]?.n,
  );
  const rows = (
    await pool.query<{ c: number }>(
      "SELECT (extract(epoch FROM created_at) * 1000)::float8 AS c FROM audit_events WHERE id > $1::bigint ORDER BY id",
      [afterId],
    )
  ).rows;
  const size = Number((await pool.query<{ n: string }>("SELECT max(size)::text AS n FROM audit_log_checkpoints")).rows[0]?.n);
  if (size !== before + rows.length) throw new Error(`the log holds ${size} entries, the database ${before + rows.length} events`);
  const signed = (
    await pool.query<{ size: string; at: number }>(
      "SELECT size::text AS size, (extract(epoch FROM signed_at) * 1000)::float8 AS at FROM audit_log_checkpoints WHERE size > $1 ORDER BY audit_log_checkpoints.size",
      [before],
    )
  ).rows.map((r) => ({ size: Number(r.size), at: r.at }));

  const lags: number[] = [];
  const bySigned: number[] = [];
  let s = 0;
  let k = 0;
  rows.forEach((r, i) => {
    const index = before + i;
    while (s < seen.length && (seen[s] as Seen).size <= index) s++;
    while (k < signed.length && (signed[k] as { size: number }).size <= index) k++;
    const at = seen[s]?.at;
    if (at === undefined) throw new Error(`entry ${index}: no polled checkpoint covers it`);
    lags.push((at - r.c) / 1000);
    bySigned.push(((signed[k]?.at ?? Number.NaN) - r.c) / 1000);
  });
  const third = Math.floor(rows.length / 3);
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const all = sorted(lags);
  return {
    events: rows.length,
    p50: quantile(all, 0.5),
    p99: quantile(all, 0.99),
    max: all.at(-1) ?? Number.NaN,
    p99First: quantile(sorted(lags.slice(0, third)), 0.99),
    p99Last: quantile(sorted(lags.slice(rows.length - third)), 0.99),
    p99SignedAt: quantile(sorted(bySigned), 0.99),
  };
}
