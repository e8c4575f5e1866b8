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
  deliveryRenew,
  dispatchBatch,
  webhookAnyEnabled,
} from "../store/webhooks.js";
import type { Log } from "./log.js";
import type { AttemptResult, WebhookSender } from "./webhook-sender.js";
import { signedHeaders } from "./webhook-signing.js";

/** Audit events fanned out per transaction. */
const DISPATCH_BATCH = 1000;
/**
 * Deliveries leased at once on this instance (running or queued) beyond the one every endpoint may
 * always hold: past it, an endpoint holding nothing still gets its next delivery, the others wait.
 */
const MAX_HELD = 2048;
/** A healthy endpoint leases this many times its concurrency: the next attempts wait here, not behind a claim round trip. */
const PREFETCH = 4;
/**
 * A lease lasts this long and is renewed every LEASE_RENEW_MS while this instance holds the delivery
 * (queued or being attempted): a delivery of an instance that died is claimable again at most this
 * long after its death. An attempt whose lease could not be renewed in time is cut before it lapses.
 */
export const LEASE_MS = 15_000;
const LEASE_RENEW_MS = 2_000;
/**
 * A held delivery whose lease could lapse before the next renewal (less than this left) is let go:
 * a queued one is dropped, a running attempt cut. An attempt starts only with more than this left.
 */
const LEASE_CUT_MS = LEASE_RENEW_MS + 2_000;
const PRUNE_EVERY_MS = 60 * 60 * 1000;
/** Deliveries leased per claim statement: a burst of probes is leased in steps that each take little time. */
const CLAIM_CHUNK = 250;
/**
 * Attempts started per turn of the event loop when a claim brings many at once: between slices the
 * loop answers I/O (responses of attempts already started, the next claim, renewals, API requests),
 * so a thousand first attempts never hold it for the time it takes to open a thousand sockets.
 */
const START_SLICE = 50;
/** Audit events kept after a claim read them: the next chunks of a burst (the same events) skip the read. */
const EVENT_CACHE = 1000;
/** The longest a failing endpoint's next attempt is held back (each delivery's own retry schedule still applies). */
const BREAKER_MAX_MS = 30_000;

interface Held {
  claimed: Claimed;
  token: string;
  /** This instance's clock: the lease runs at least until then (measured from before the claim or renewal was sent). */
  leaseUntil: number;
  event: AuditEvent | undefined;
  /** Set while the attempt runs: cuts it when the lease is lost. */
  abort?: AbortController;
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
 *   (store/webhooks.ts, dispatchBatch). One instance at a time holds it. It
 *   runs on its own, never behind claims or attempts.
 * - Attempts: claims due deliveries with leases (SKIP LOCKED), oldest due
 *   first per endpoint and every endpoint in every claim. An endpoint
 *   whose last attempt here succeeded may hold `concurrency * PREFETCH`
 *   and run `concurrency` at once; any other (new, or failing: hanging,
 *   dribbling, redirecting, refusing) holds one delivery at a time, so a
 *   thousand broken endpoints hold a thousand leases and nothing else.
 *   Each attempt is bounded by `timeoutMs`. See docs/webhooks.md.
 * - Leases: short, renewed while held, so a dead instance's deliveries
 *   are claimed again within LEASE_MS.
 * - Wake-ups: notifications when audit events commit and when deliveries
 *   become due (any instance), a timer for this instance's own retries, and
 *   a poll every `pollMs` as the safety net.
 */
export class WebhookWorker {
  private readonly running = new Map<string, number>();
  /** Leased deliveries waiting for one of their endpoint's slots. */
  private readonly queued = new Map<string, Held[]>();
  /** Every delivery this instance holds a lease on (queued or running), by delivery id. */
  private readonly held = new Map<string, Held>();
  /** Endpoints whose last attempt on this instance succeeded: they get their full share. */
  private readonly healthy = new Set<string>();
  /** Endpoints whose last attempts failed: how many in a row, and until when the next one waits. */
  private readonly failing = new Map<string, { failures: number; until: number }>();
  private inFlight = 0;
  /** Endpoints with newly claimed deliveries, in claim order, waiting for the next slice of starts. */
  private readonly ready = new Set<string>();
  private pumping = false;
  /** Recently read audit events by id (insertion order = age): payloads are immutable, so never stale. */
  private readonly events = new Map<string, AuditEvent>();
  private dispatching: Promise<void> | null = null;
  private dispatchAgain = false;
  /** The claims of endpoints known healthy, apart: a burst of probes to failing ones never delays them. */
  private readonly fastLane = new Serial(() => this.cycle("fast"));
  private readonly slowLane = new Serial(() => this.cycle("slow"));
  private stopped = false;
  /** Some endpoint is enabled: until then the worker runs no SQL at all. */
  private active = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private poll: NodeJS.Timeout | null = null;
  private prune: NodeJS.Timeout | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private renewing: Promise<void> | null = null;
  private readonly outcomes: AttemptOutcome[] = [];
  private flushing: Promise<void> | null = null;
  private readonly attempts = new Set<Promise<void>>();

  constructor(
    private readonly db: Db,
    private readonly log: Log & Pick<BaseLogger, "info">,
    private readonly settings: WebhookSettings,
    private readonly sender: WebhookSender,
    private readonly observer: WorkerObserver,
  ) {}

  start(): void {
    this.poll = setInterval(() => this.onAudit(), this.settings.pollMs);
    this.poll.unref();
    this.prune = setInterval(() => void this.pruneOld(), PRUNE_EVERY_MS);
    this.prune.unref();
    this.renewTimer = setInterval(() => {
      // First let go of what renewals failed to keep (a renewal that hangs must not hold this back).
      this.cutLapsing();
      void this.renew();
    }, LEASE_RENEW_MS);
    this.renewTimer.unref();
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
      this.log.warn({ err }, "webhook worker: could not read the endpoints");
    }
    this.onAudit();
  }

  /** Audit events committed (or may have): fan out, and claim whatever is due. */
  onAudit(): void {
    this.dispatch();
    this.wake();
  }

  /** Fan out now (or once more after the current run); a claim follows when deliveries were made. */
  private dispatch(): void {
    if (this.stopped || !this.active) return;
    if (this.dispatching) {
      this.dispatchAgain = true;
      return;
    }
    this.dispatching = this.fanOut().finally(() => {
      this.dispatching = null;
      if (this.dispatchAgain) {
        this.dispatchAgain = false;
        this.dispatch();
      }
    });
  }

  /** Something may be due: claim now (or once more after the current claim), in both lanes. */
  wake(): void {
    if (this.stopped || !this.active) return;
    this.fastLane.kick();
    this.slowLane.kick();
  }

  /** Stop claiming; let attempts in flight finish and record their results. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    if (this.prune) clearInterval(this.prune);
    for (const t of this.timers) clearTimeout(t);
    await this.dispatching;
    await this.fastLane.idle();
    await this.slowLane.idle();
    // Leases not started yet go back at once, so another instance may take them.
    for (const [, list] of this.queued) {
      const byToken = new Map<string, string[]>();
      for (const q of list.splice(0)) {
        this.held.delete(q.claimed.id);
        byToken.set(q.token, [...(byToken.get(q.token) ?? []), q.claimed.id]);
      }
      for (const [token, ids] of byToken) await deliveryRelease(this.db, ids, token).catch(() => {});
    }
    this.queued.clear();
    // Leases keep being renewed while the last attempts run.
    await Promise.allSettled([...this.attempts]);
    if (this.renewTimer) clearInterval(this.renewTimer);
    await this.renewing;
    await this.flush();
  }

  stats(): { inFlight: number; held: number } {
    return { inFlight: this.inFlight, held: this.held.size };
  }

  private async fanOut(): Promise<void> {
    try {
      for (;;) {
        const r = await this.db.tx((q) => dispatchBatch(q, DISPATCH_BATCH));
        if (r && r.deliveries > 0) this.wake();
        if (!r || r.events < DISPATCH_BATCH || this.stopped) break;
      }
    } catch (err) {
      this.log.warn({ err }, "webhook worker: fan-out failed; retrying on the next wake-up");
    }
  }

  /**
   * How many more deliveries each endpoint may lease now, in one lane: the fast lane claims for
   * endpoints known healthy only, the slow lane for every other (new, failing) endpoint; endpoints
   * not named may lease `otherwise` (they hold none).
   */
  private allowances(lane: "fast" | "slow"): {
    allowed: Record<string, number>;
    otherwise: number;
    only: string[] | null;
    last?: string[];
  } {
    const over = this.held.size >= MAX_HELD;
    const holding = new Map<string, number>();
    for (const h of this.held.values()) holding.set(h.claimed.endpoint_id, (holding.get(h.claimed.endpoint_id) ?? 0) + 1);
    const allowed: Record<string, number> = {};
    if (lane === "fast") {
      for (const id of this.healthy) {
        const n = holding.get(id) ?? 0;
        allowed[id] =
          n === 0 ? (over ? 1 : this.settings.concurrency * PREFETCH) : over ? 0 : Math.max(0, this.settings.concurrency * PREFETCH - n);
      }
      return { allowed, otherwise: 0, only: Object.keys(allowed) };
    }
    const now = Date.now();
    for (const [id, f] of this.failing) if (f.until > now) allowed[id] = 0;
    // Held ones are at their one; healthy ones are the fast lane's.
    for (const id of holding.keys()) allowed[id] = 0;
    for (const id of this.healthy) allowed[id] = 0;
    // Endpoints never seen failing come first: a chunked claim reaches them before the failing ones.
    return { allowed, otherwise: 1, only: null, last: [...this.failing.keys()].filter((id) => allowed[id] === undefined) };
  }

  private async cycle(lane: "fast" | "slow"): Promise<void> {
    try {
      while (!this.stopped && this.active) {
        const a = this.allowances(lane);
        if (a.only?.length === 0) break;
        const token = randomUUID();
        const sentAt = Date.now();
        const claimed = await deliveryClaim(this.db, { ...a, limit: CLAIM_CHUNK, leaseMs: LEASE_MS, token });
        if (claimed.length === 0) break;
        const events = await this.eventsOf(claimed);
        const endpoints = new Set<string>();
        for (const c of claimed) {
          const h: Held = {
            claimed: c,
            token,
            leaseUntil: sentAt + LEASE_MS,
            event: c.event_id === null ? undefined : events.get(c.event_id),
          };
          const list = this.queued.get(c.endpoint_id) ?? [];
          list.push(h);
          this.queued.set(c.endpoint_id, list);
          this.held.set(c.id, h);
          endpoints.add(c.endpoint_id);
        }
        // Healthy endpoints' deliveries start now. The slow lane's (a burst of first attempts or probes)
        // start in slices, the first one now: the next claim goes out meanwhile, not after them, and a
        // healthy endpoint's deliveries never queue behind them.
        if (lane === "fast") for (const id of endpoints) this.take(id);
        else this.startSoon(endpoints);
      }
    } catch (err) {
      this.log.warn({ err, lane }, "webhook worker: claim failed; retrying on the next wake-up");
    }
  }

  /** The audit events these deliveries carry, from the cache or read once (absent: the event could not be read). */
  private async eventsOf(claimed: readonly Claimed[]): Promise<Map<string, AuditEvent>> {
    const found = new Map<string, AuditEvent>();
    const missing = new Set<string>();
    for (const c of claimed) {
      if (c.event_id === null) continue;
      const e = this.events.get(c.event_id);
      if (e) found.set(c.event_id, e);
      else missing.add(c.event_id);
    }
    if (missing.size > 0) {
      // log_index stays null in payloads: it is set after the commit, and a retry must carry the same body.
      for (const [id, e] of await auditFindByIds(this.db, [...missing], { withLogIndex: false })) {
        found.set(id, e);
        this.events.set(id, e);
      }
      for (const id of this.events.keys()) {
        if (this.events.size <= EVENT_CACHE) break;
        this.events.delete(id);
      }
    }
    return found;
  }

  /** Start these endpoints' queued deliveries: a slice now, the rest a slice per turn of the event loop. */
  private startSoon(endpointIds: Iterable<string>): void {
    for (const id of endpointIds) this.ready.add(id);
    if (!this.pumping) this.pump();
  }

  private pump(): void {
    this.pumping = true;
    let started = 0;
    for (const id of this.ready) {
      if (started >= START_SLICE) break;
      this.ready.delete(id);
      started += this.take(id);
    }
    if (this.ready.size > 0 && !this.stopped) setImmediate(() => this.pump());
    else {
      this.ready.clear();
      this.pumping = false;
    }
  }

  /** Start an endpoint's queued deliveries while it has free slots; returns how many were started. */
  private take(endpointId: string): number {
    const list = this.queued.get(endpointId);
    const slots = this.healthy.has(endpointId) ? this.settings.concurrency : 1;
    let started = 0;
    while (list && list.length > 0 && (this.running.get(endpointId) ?? 0) < slots && !this.stopped) {
      const next = list.shift() as Held;
      // Too little of its lease left (renewals failing): let it lapse and be claimed afresh.
      if (Date.now() + LEASE_CUT_MS > next.leaseUntil) {
        this.held.delete(next.claimed.id);
        continue;
      }
      this.begin(next);
      started++;
    }
    if (list && list.length === 0) this.queued.delete(endpointId);
    return started;
  }

  private begin(h: Held): void {
    const c = h.claimed;
    this.inFlight++;
    h.abort = new AbortController();
    this.running.set(c.endpoint_id, (this.running.get(c.endpoint_id) ?? 0) + 1);
    const p = this.attempt(h).finally(() => {
      this.inFlight--;
      this.held.delete(c.id);
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

  private async attempt(h: Held): Promise<void> {
    const { claimed: c, token, event } = h;
    let result: AttemptResult;
    if (c.event_id !== null && !event) {
      result = { ok: false, statusCode: null, error: "the audit event could not be read" };
    } else {
      const body = JSON.stringify(
        event
          ? { type: event.action, timestamp: event.created_at, data: event }
          : { type: "webhook.test", timestamp: c.created_at.toISOString(), data: { webhook_id: c.endpoint_id } },
      );
      result = await this.sender.send(c.url, signedHeaders(c.secrets, c.message_id, body), body, h.abort?.signal);
    }
    this.judge(c.endpoint_id, result.ok);
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

  /**
   * The breaker: a success gives an endpoint its full share; a failure puts it in the slow lane (one
   * delivery at a time) and holds its next claim back, longer after each failure in a row (the retry
   * schedule's base, doubling, at most its cap and BREAKER_MAX_MS), so a failing endpoint costs little.
   */
  private judge(endpointId: string, ok: boolean): void {
    if (ok) {
      this.healthy.add(endpointId);
      this.failing.delete(endpointId);
      return;
    }
    this.healthy.delete(endpointId);
    const failures = (this.failing.get(endpointId)?.failures ?? 0) + 1;
    const pause = Math.min(this.settings.retryBaseMs * 2 ** Math.min(failures - 1, 20), this.settings.retryMaxMs, BREAKER_MAX_MS);
    this.failing.set(endpointId, { failures, until: Date.now() + pause });
    // Bounded memory: endpoints deleted meanwhile are forgotten now and then.
    if (this.failing.size > 100_000) this.failing.clear();
    if (this.healthy.size > 100_000) this.healthy.clear();
  }

  /**
   * Renew every lease this instance holds, in one statement. A lease that is no longer ours (it
   * lapsed and was taken over, or its endpoint was deleted) is let go: a queued delivery is dropped,
   * a running attempt is cut. So is one whose renewal keeps failing, before its lease lapses: one
   * instance at a time works on a delivery.
   */
  private async renew(): Promise<void> {
    if (this.renewing || this.held.size === 0) return;
    const sent = [...this.held.values()];
    const sentAt = Date.now();
    this.renewing = (async () => {
      try {
        const kept = new Set(
          await deliveryRenew(
            this.db,
            sent.map((h) => h.claimed.id),
            [...new Set(sent.map((h) => h.token))],
            LEASE_MS,
          ),
        );
        for (const h of sent) {
          if (this.held.get(h.claimed.id) !== h) continue;
          if (kept.has(h.claimed.id)) h.leaseUntil = sentAt + LEASE_MS;
          else this.letGo(h, "the attempt was cut: its lease was lost");
        }
      } catch (err) {
        this.log.warn({ err, deliveries: sent.length }, "webhook worker: could not renew leases");
      } finally {
        this.renewing = null;
      }
    })();
    await this.renewing;
  }

  /** Renewals failed for too long: let go of what could lapse before the next renewal. */
  private cutLapsing(): void {
    const now = Date.now();
    for (const h of this.held.values()) {
      if (h.leaseUntil - now < LEASE_CUT_MS) this.letGo(h, "the attempt was cut: its lease could not be renewed");
    }
  }

  private letGo(h: Held, reason: string): void {
    if (h.abort) {
      h.abort.abort(new Error(reason));
      return;
    }
    this.held.delete(h.claimed.id);
    const list = this.queued.get(h.claimed.endpoint_id);
    const i = list?.indexOf(h) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
    if (list?.length === 0) this.queued.delete(h.claimed.endpoint_id);
  }

  /** Results are written in batches: one UPDATE for all attempts that ended while the last one ran. */
  private async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.outcomes.length === 0) return;
    const batch = this.outcomes.splice(0, this.outcomes.length);
    this.flushing = deliveryComplete(this.db, batch)
      .catch((err: Error) => {
        // The leases expire and the deliveries are attempted again: at least once, never lost.
        this.log.warn({ err, deliveries: batch.length }, "webhook worker: could not record attempts");
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
      this.log.warn({ err }, "webhook worker: prune failed");
    }
  }
}

/** Runs `fn` one at a time: a kick while it runs makes it run once more afterwards. */
class Serial {
  private running: Promise<void> | null = null;
  private again = false;
  constructor(private readonly fn: () => Promise<void>) {}

  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.fn().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}

function labelOf(r: AttemptResult): AttemptOutcomeLabel {
  if (r.ok) return "succeeded";
  if (r.statusCode !== null) return "http_error";
  if (r.error?.startsWith("refused")) return "refused";
  if (r.error?.startsWith("no answer")) return "timeout";
  return "network_error";
}
