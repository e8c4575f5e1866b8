import { randomUUID } from "node:crypto";
import type { BaseLogger } from "pino";
import type { WebhookSettings } from "../config.js";
import type { AuditEvent } from "../schemas/audit.js";
import { auditFindByIds } from "../store/audit.js";
import type { Db } from "../store/db.js";
import {
  type AttemptOutcome,
  type Claimed,
  deliveriesPrune,
  deliveryClaim,
  deliveryComplete,
  deliveryRelease,
  dispatchBatch,
  webhookAnyEnabled,
} from "../store/webhooks.js";
import type { Log } from "./log.js";
import type { AttemptResult, WebhookSender } from "./webhook-sender.js";
import { signedHeaders } from "./webhook-signing.js";

/** Audit events fanned out per transaction. */
const DISPATCH_BATCH = 1000;
/** Deliveries leased at once on this instance (running or queued), all endpoints together. */
const MAX_HELD = 2048;
/** Per endpoint, lease this many times its concurrency: the next attempts wait here, not behind a claim round trip. */
const PREFETCH = 4;
const PRUNE_EVERY_MS = 60 * 60 * 1000;

interface Queued {
  claimed: Claimed;
  token: string;
  leasedAt: number;
  event: AuditEvent | undefined;
}

export type AttemptOutcomeLabel = "succeeded" | "http_error" | "timeout" | "network_error" | "refused";

export interface WorkerObserver {
  attempt(outcome: AttemptOutcomeLabel): void;
  /** Seconds from the event's commit (its created_at) to a receiver's 2xx, first success only. */
  delivered(lagSeconds: number): void;
}

/** Retry n (n >= 1) waits base * 2^(n-1), +-20 %, at most `max`. */
export function retryDelayMs(attempts: number, baseMs: number, maxMs: number, random = Math.random): number {
  const plain = baseMs * 2 ** Math.min(Math.max(attempts - 1, 0), 40);
  return Math.round(Math.min(plain * (0.8 + 0.4 * random()), maxMs));
}

/**
 * Turns committed audit events into deliveries and attempts them.
 *
 * - Fan-out: reads the log past a durable cursor, below the audit horizon
 *   (store/webhooks.ts, dispatchBatch). One instance at a time holds it.
 * - Attempts: claims due deliveries with leases (SKIP LOCKED), at most
 *   `concurrency` per endpoint on this instance, so a slow endpoint fills
 *   only its own slots; each attempt is bounded by `timeoutMs`.
 * - Wake-ups: notifications when audit events commit and when deliveries
 *   become due (any instance), a timer for this instance's own retries, and
 *   a poll every `pollMs` as the safety net.
 */
export class WebhookWorker {
  private readonly running = new Map<string, number>();
  /** Leased deliveries waiting for one of their endpoint's slots. */
  private readonly queued = new Map<string, Queued[]>();
  private inFlight = 0;
  private held = 0;
  /** Audit events may have committed since the last fan-out. */
  private dispatchWanted = true;
  private cycling: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  /** Some endpoint is enabled: until then the worker runs no SQL at all. */
  private active = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private poll: NodeJS.Timeout | null = null;
  private prune: NodeJS.Timeout | null = null;
  private readonly outcomes: AttemptOutcome[] = [];
  private flushing: Promise<void> | null = null;
  private readonly attempts = new Set<Promise<void>>();
  private readonly leaseMs: number;

  constructor(
    private readonly db: Db,
    private readonly log: Log & Pick<BaseLogger, "info">,
    private readonly settings: WebhookSettings,
    private readonly sender: WebhookSender,
    private readonly observer: WorkerObserver,
  ) {
    // An attempt never outlives its lease: the lease covers the attempts queued ahead of it on its
    // endpoint and its own timeout, with room for recording the result; see take() for the check.
    this.leaseMs = settings.timeoutMs * (PREFETCH + 1) + 30_000;
  }

  start(): void {
    this.poll = setInterval(() => this.onAudit(), this.settings.pollMs);
    this.poll.unref();
    this.prune = setInterval(() => void this.pruneOld(), PRUNE_EVERY_MS);
    this.prune.unref();
    void this.pruneOld();
    void this.refresh();
  }

  /** Endpoints were created, changed or deleted (or notices may have been missed): is there anything to deliver to? */
  async refresh(): Promise<void> {
    if (this.stopped) return;
    try {
      this.active = await webhookAnyEnabled(this.db);
    } catch (err) {
      // Keep the last answer; the next notice or reconnection asks again.
      this.log.warn({ err: { message: (err as Error).message } }, "webhook worker: could not read the endpoints");
    }
    this.wake();
  }

  /** Audit events committed (or may have): fan out, then claim. */
  onAudit(): void {
    this.dispatchWanted = true;
    this.wake();
  }

  /** Something may be due: run a cycle now (or once more after the current one). */
  wake(): void {
    if (this.stopped || !this.active) return;
    if (this.cycling) {
      this.again = true;
      return;
    }
    this.cycling = this.cycle().finally(() => {
      this.cycling = null;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Stop claiming; let attempts in flight finish and record their results. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    if (this.prune) clearInterval(this.prune);
    for (const t of this.timers) clearTimeout(t);
    await this.cycling;
    // Leases not started yet go back at once, so another instance may take them.
    for (const [, list] of this.queued) {
      const byToken = new Map<string, string[]>();
      for (const q of list.splice(0)) byToken.set(q.token, [...(byToken.get(q.token) ?? []), q.claimed.id]);
      for (const [token, ids] of byToken) await deliveryRelease(this.db, ids, token).catch(() => {});
    }
    await Promise.allSettled([...this.attempts]);
    await this.flush();
  }

  stats(): { inFlight: number } {
    return { inFlight: this.inFlight };
  }

  private async cycle(): Promise<void> {
    try {
      // Once per cycle: under a steady stream of commits a new notice always arrives meanwhile, and
      // looping on it would starve the claims below. The notice re-runs the cycle (wake()'s `again`).
      if (this.dispatchWanted && !this.stopped) {
        this.dispatchWanted = false;
        for (;;) {
          const r = await this.db.tx((q) => dispatchBatch(q, DISPATCH_BATCH));
          if (!r || r.events < DISPATCH_BATCH || this.stopped) break;
        }
      }
      while (!this.stopped && this.held < MAX_HELD) {
        const token = randomUUID();
        const holding: Record<string, number> = {};
        for (const [id, n] of this.running) holding[id] = n;
        for (const [id, list] of this.queued) holding[id] = (holding[id] ?? 0) + list.length;
        const claimed = await deliveryClaim(this.db, {
          slots: this.settings.concurrency * PREFETCH,
          running: holding,
          leaseMs: this.leaseMs,
          token,
          limit: MAX_HELD - this.held,
        });
        if (claimed.length === 0) break;
        const leasedAt = Date.now();
        // log_index stays null in payloads: it is set after the commit, and a retry must carry the same body.
        const events = await auditFindByIds(
          this.db,
          claimed.flatMap((c) => (c.event_id === null ? [] : [c.event_id])),
          { withLogIndex: false },
        );
        const endpoints = new Set<string>();
        for (const c of claimed) {
          const list = this.queued.get(c.endpoint_id) ?? [];
          list.push({ claimed: c, token, leasedAt, event: c.event_id === null ? undefined : events.get(c.event_id) });
          this.queued.set(c.endpoint_id, list);
          this.held++;
          endpoints.add(c.endpoint_id);
        }
        for (const id of endpoints) this.take(id);
      }
    } catch (err) {
      this.log.warn({ err: { message: (err as Error).message } }, "webhook worker: cycle failed; retrying on the next wake-up");
    }
  }

  /** Start an endpoint's queued deliveries while it has free slots. */
  private take(endpointId: string): void {
    const list = this.queued.get(endpointId);
    while (list && list.length > 0 && (this.running.get(endpointId) ?? 0) < this.settings.concurrency && !this.stopped) {
      const next = list.shift() as Queued;
      // Too little of its lease left for a whole attempt: let it expire and be claimed afresh.
      if (Date.now() + this.settings.timeoutMs + 10_000 > next.leasedAt + this.leaseMs) {
        this.held--;
        continue;
      }
      this.begin(next);
    }
    if (list && list.length === 0) this.queued.delete(endpointId);
  }

  private begin(q: Queued): void {
    const c = q.claimed;
    this.inFlight++;
    this.running.set(c.endpoint_id, (this.running.get(c.endpoint_id) ?? 0) + 1);
    const p = this.attempt(c, q.token, q.event).finally(() => {
      this.inFlight--;
      this.held--;
      const n = (this.running.get(c.endpoint_id) ?? 1) - 1;
      if (n <= 0) this.running.delete(c.endpoint_id);
      else this.running.set(c.endpoint_id, n);
      this.attempts.delete(p);
      this.take(c.endpoint_id);
      // Its queue ran dry: claim more.
      if (!this.queued.has(c.endpoint_id)) this.wake();
    });
    this.attempts.add(p);
  }

  private async attempt(c: Claimed, token: string, event: AuditEvent | undefined): Promise<void> {
    let result: AttemptResult;
    if (c.event_id !== null && !event) {
      result = { ok: false, statusCode: null, error: "the audit event could not be read" };
    } else {
      const body = JSON.stringify(
        event
          ? { type: event.action, timestamp: event.created_at, data: event }
          : { type: "webhook.test", timestamp: c.created_at.toISOString(), data: { webhook_id: c.endpoint_id } },
      );
      result = await this.sender.send(c.url, signedHeaders(c.secrets, c.message_id, body), body);
    }
    this.observer.attempt(labelOf(result));
    if (result.ok && event && c.attempts === 0) this.observer.delivered((Date.now() - Date.parse(event.created_at)) / 1000);
    const retryInMs = retryDelayMs(c.attempts + 1, this.settings.retryBaseMs, this.settings.retryMaxMs);
    this.outcomes.push({ id: c.id, token, ...result, retryInMs, windowMs: this.settings.retryWindowMs });
    void this.flush();
    if (!result.ok && !this.stopped) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.wake();
      }, retryInMs + 5);
      t.unref();
      this.timers.add(t);
    }
  }

  /** Results are written in batches: one UPDATE for all attempts that ended while the last one ran. */
  private async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.outcomes.length === 0) return;
    const batch = this.outcomes.splice(0, this.outcomes.length);
    this.flushing = deliveryComplete(this.db, batch)
      .catch((err: Error) => {
        // The leases expire and the deliveries are attempted again: at least once, never lost.
        this.log.warn({ err: { message: err.message }, deliveries: batch.length }, "webhook worker: could not record attempts");
      })
      .finally(() => {
        this.flushing = null;
      });
    await this.flushing;
  }

  private async pruneOld(): Promise<void> {
    try {
      const n = await deliveriesPrune(this.db, this.settings.retentionDays);
      if (n > 0) this.log.info({ deliveries: n }, "webhook deliveries pruned after the retention period");
    } catch (err) {
      this.log.warn({ err: { message: (err as Error).message } }, "webhook worker: prune failed");
    }
  }
}

function labelOf(r: AttemptResult): AttemptOutcomeLabel {
  if (r.ok) return "succeeded";
  if (r.statusCode !== null) return "http_error";
  if (r.error?.startsWith("refused")) return "refused";
  if (r.error?.startsWith("no answer")) return "timeout";
  return "network_error";
}
