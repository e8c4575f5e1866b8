import { Counter, Gauge, Histogram } from "prom-client";
import { WebhookSender } from "../domain/webhook-sender.js";
import { WebhookWorker } from "../domain/webhook-worker.js";
import { VERIFY_CHANNEL } from "../store/notify.js";
import { AUDIT_CHANNEL, DELIVERY_CHANNEL, deliveryQueueDepth, ENDPOINTS_CHANGED } from "../store/webhooks.js";
import { AuditTail } from "./audit-tail.js";
import { type SseStream, StreamSlots } from "./sse.js";
import { ChangeFeed, type StreamHub, streamRoutes } from "./streams.js";
import type { App, Deps } from "./types.js";
import { webhookRoutes } from "./webhooks.js";

/**
 * Events out: webhook endpoints and their delivery worker, the audit stream
 * and the verify-cache change stream, with the notifications that wake
 * them. Everything here starts with the app and stops with it: streams end
 * first (preClose), then the worker finishes its attempts in flight.
 */
export async function eventRoutes(app: App, deps: Deps): Promise<void> {
  const { db, config } = deps;
  const log = app.log;
  const dropped = new Counter({
    name: "tenant_registry_stream_dropped_total",
    help: "Stream subscribers disconnected for leaving more than 1 MiB unread, by stream.",
    labelNames: ["stream"] as const,
    registers: [app.metrics.registry],
  });
  const streamQueries = new Counter({
    name: "tenant_registry_audit_stream_queries_total",
    help: "Statements the audit streams ran: the instance's one tail (reader=tail), or subscribers catching up from behind it (reader=catch_up).",
    labelNames: ["reader"] as const,
    registers: [app.metrics.registry],
  });
  const tail = new AuditTail(
    db,
    log,
    { pollMs: 1000, page: 500, ringEvents: 10_000, ringBytes: 16 * 1024 * 1024, catchUpReads: 2, stallMs: 10_000 },
    { query: (reader, n) => streamQueries.inc({ reader }, n) },
  );
  const changes = new ChangeFeed(500);
  const hub: StreamHub = {
    tail,
    changes,
    slots: new StreamSlots(config.streams.max, config.streams.perPrincipal),
    streams: new Map<"audit" | "changes", Set<SseStream>>(),
    commentEveryMs: 10_000,
    dropped: (stream) => dropped.inc({ stream }),
  };

  const attempts = new Counter({
    name: "tenant_registry_webhook_attempts_total",
    help: "Webhook delivery attempts by outcome: succeeded, http_error, timeout, network_error, refused (SSRF guard).",
    labelNames: ["outcome"] as const,
    registers: [app.metrics.registry],
  });
  const lag = new Histogram({
    name: "tenant_registry_webhook_delivery_lag_seconds",
    help: "From an audit event's commit to the receiver's 2xx, for deliveries that succeeded at their first attempt.",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [app.metrics.registry],
  });
  new Gauge({
    name: "tenant_registry_webhook_queue_depth",
    help: "Webhook deliveries waiting for an attempt (pending or failed), all instances.",
    registers: [app.metrics.registry],
    async collect() {
      try {
        this.set(await deliveryQueueDepth(db));
      } catch {
        // The scrape still answers; the gauge keeps its last value.
      }
    },
  });
  new Gauge({
    name: "tenant_registry_stream_subscribers",
    help: "Open server-sent-event streams on this instance, by stream.",
    labelNames: ["stream"] as const,
    registers: [app.metrics.registry],
    collect() {
      this.set({ stream: "audit" }, hub.streams.get("audit")?.size ?? 0);
      this.set({ stream: "changes" }, hub.streams.get("changes")?.size ?? 0);
    },
  });

  const sender = new WebhookSender({ allowPrivate: config.webhooks.allowPrivate, timeoutMs: config.webhooks.timeoutMs });
  const worker = new WebhookWorker(db, log, config.webhooks, sender, {
    attempt: (outcome) => attempts.inc({ outcome }),
    delivered: (seconds) => lag.observe(seconds),
  });

  const unlisten: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    await Promise.all(unlisten.splice(0).map((u) => u().catch(() => {})));
  };
  try {
    unlisten.push(
      await db.listen(
        AUDIT_CHANNEL,
        () => {
          app.auditLog.wake();
          worker.onAudit();
          tail.wake();
        },
        () => {
          // Back after a lost connection: notices may have been missed.
          void worker.refresh();
          tail.wake();
        },
      ),
    );
    unlisten.push(
      await db.listen(
        DELIVERY_CHANNEL,
        (payload) => (payload === ENDPOINTS_CHANGED ? void worker.refresh() : worker.wake()),
        () => void worker.refresh(),
      ),
    );
    unlisten.push(
      await db.listen(
        VERIFY_CHANNEL,
        (payload) => changes.notice(payload),
        (listening) => changes.listening(listening),
      ),
    );
  } catch (err) {
    await closeAll();
    throw err;
  }
  worker.start();

  app.addHook("preClose", async () => {
    for (const set of hub.streams.values()) for (const s of set) s.close();
  });
  app.addHook("onClose", async () => {
    await worker.stop();
    sender.close();
    await closeAll();
  });

  await webhookRoutes(app, { ...deps, wake: () => worker.wake() });
  await streamRoutes(app, { hub });
}
