import { Agent, request } from "node:http";
import type pg from "pg";

/** One acknowledged batch: when it was sent and answered (wall clock, ms) and its first event's created_at. */
export interface Acked {
  sentAt: number;
  doneAt: number;
  createdAt: number;
  events: number;
}

export interface PacedRun {
  acked: Acked[];
  /** Batches not sent because `maxInFlight` were still unanswered: ingest itself saturated. */
  skipped: number;
  /** Events acknowledged per second of the window. */
  achieved: number;
  startedAt: number;
  endedAt: number;
}

const CREATED = /"created_at":"([^"]+)"/;

/**
 * POSTs the same ready-made batch `perSecond` times a second for `seconds`,
 * on a schedule (not back to back): the load of a steady stream of
 * producers. A batch due while `maxInFlight` are unanswered is skipped and
 * counted, so a rate the server cannot take shows as `skipped`, not as a
 * slower schedule. Only the first `created_at` of each answer is parsed,
 * so the generator stays cheap.
 */
export async function pacedBatches(
  url: string,
  token: string,
  body: string,
  events: number,
  perSecond: number,
  seconds: number,
  maxInFlight = 32,
): Promise<PacedRun> {
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: maxInFlight });
  const payload = Buffer.from(body);
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": String(payload.length) };
  const acked: Acked[] = [];
  const pending = new Set<Promise<void>>();
  let skipped = 0;
  let failure: Error | undefined;
  const post = (): Promise<void> =>
    new Promise((resolve) => {
      const sentAt = Date.now();
      const req = request({ host: target.hostname, port: target.port, path: target.pathname, method: "POST", headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const doneAt = Date.now();
          const text = Buffer.concat(chunks).subarray(0, 2000).toString("utf8");
          const m = CREATED.exec(text);
          if (res.statusCode !== 201 || !m) failure ??= new Error(`POST ${url}: ${res.statusCode} ${text.slice(0, 200)}`);
          else acked.push({ sentAt, doneAt, createdAt: Date.parse(m[1] as string), events });
          resolve();
        });
      });
      req.on("error", (err) => {
        failure ??= err;
        resolve();
      });
      req.end(payload);
    });

  const startedAt = Date.now();
  const total = Math.round(perSecond * seconds);
  for (let i = 0; i < total; i++) {
    const due = startedAt + (i * 1000) / perSecond;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (pending.size >= maxInFlight) {
      skipped++;
      continue;
    }
    const p = post().finally(() => pending.delete(p));
    pending.add(p);
  }
  const endedAt = startedAt + seconds * 1000;
  await Promise.all(pending);
  agent.destroy();
  if (failure) throw failure;
  const inWindow = acked.filter((a) => a.doneAt <= endedAt + 1000).reduce((n, a) => n + a.events, 0);
  return { acked, skipped, achieved: inWindow / seconds, startedAt, endedAt };
}

/** A checkpoint size first seen by a poll that returned at `at` (wall clock, ms). */
export interface Seen {
  at: number;
  size: number;
}

/**
 * Polls the newest checkpoint size every `everyMs` on its own connection.
 * A size first seen by a poll that returned at `at` was committed before
 * `at`: `at` overstates the moment by at most `everyMs` plus two queries
 * (more when the machine is busy, never less).
 */
export function pollCheckpoints(client: pg.Client, everyMs = 20): { seen: Seen[]; stop: () => Promise<void> } {
  const seen: Seen[] = [];
  let running = true;
  const loop = (async () => {
    let last = -1;
    while (running) {
      const r = await client.query<{ size: string | null }>("SELECT max(size)::text AS size FROM audit_log_checkpoints");
      const at = Date.now();
      const size = Number(r.rows[0]?.size ?? 0);
      if (size !== last) {
        seen.push({ at, size });
        last = size;
      }
      await new Promise((res) => setTimeout(res, everyMs));
    }
  })();
  return {
    seen,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** Waits until every event in the database is sequenced (the newest checkpoint covers the highest id); seconds taken. */
export async function caughtUp(pool: pg.Pool, timeoutMs = 600_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const r = await pool.query<{ done: boolean }>(
      `SELECT coalesce((SELECT last_id FROM audit_log_leaves ORDER BY start_index DESC LIMIT 1), 0)
              >= coalesce((SELECT max(id) FROM audit_events), 0) AS done`,
    );
    if (r.rows[0]?.done) return (performance.now() - t0) / 1000;
    if (performance.now() - t0 > timeoutMs) throw new Error(`the log did not catch up within ${timeoutMs / 1000} s`);
    await new Promise((res) => setTimeout(res, 50));
  }
}
