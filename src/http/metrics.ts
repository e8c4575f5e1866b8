import { Type } from "@sinclair/typebox";
import type { FastifyInstance } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { KeyServices } from "../domain/key-services.js";
import type { Db } from "../store/db.js";
import { RequestMetrics } from "./request-metrics.js";
import type { App } from "./types.js";

/**
 * Prometheus metrics (prom-client), one registry per app so tests and
 * several apps in one process do not share counters. Other modules record
 * through `app.metrics`.
 */
export interface Metrics {
  registry: Registry;
  authFailures: Counter<"reason">;
  /** Requests by method, route pattern and status: each route records through its own recorder (prelude.ts). */
  requests: RequestMetrics;
  /** Counts one verify answer: "valid" or the reason it was refused. */
  verifyResult(result: string): void;
}

declare module "fastify" {
  interface FastifyInstance {
    metrics: Metrics;
  }
}

export function registerMetrics(app: FastifyInstance, db: Db): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "tenant_registry_" });
  const requests = new RequestMetrics();
  requests.register(registry);
  const authFailures = new Counter({
    name: "tenant_registry_auth_failures_total",
    help: "Requests refused by authentication, by reason.",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  new Gauge({
    name: "tenant_registry_db_pool_connections",
    help: "Database connections by state (PGlite: one connection).",
    labelNames: ["state"] as const,
    registers: [registry],
    collect() {
      const s = db.stats();
      this.set({ state: "total" }, s.total);
      this.set({ state: "idle" }, s.idle);
      this.set({ state: "waiting_clients" }, s.waiting);
    },
  });

  new Gauge({
    name: "tenant_registry_change_channel_listening",
    help: "1 while the LISTEN subscription carries change notifications (its heartbeat comes back in time), else 0.",
    labelNames: ["channel"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const c of db.channels?.() ?? []) this.set({ channel: c.channel }, c.listening ? 1 : 0);
    },
  });
  new Gauge({
    name: "tenant_registry_change_channel_heartbeat_age_seconds",
    help: "Seconds since the LISTEN subscription last proved itself alive (its own heartbeat came back); absent while it is down.",
    labelNames: ["channel"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const c of db.channels?.() ?? []) if (c.heartbeatAgeMs !== null) this.set({ channel: c.channel }, c.heartbeatAgeMs / 1000);
    },
  });

  // Counted in plain numbers (the verify hot path), read at scrape time.
  const verifyCounts: Record<string, number> = {};
  mirrorCounter(
    registry,
    "tenant_registry_verify_results_total",
    "API-key verify answers: valid, or the reason it was refused.",
    "result",
    () => ({
      ...verifyCounts,
    }),
  );
  const verifyResult = (result: string) => {
    verifyCounts[result] = (verifyCounts[result] ?? 0) + 1;
  };
  const metrics: Metrics = { registry, authFailures, requests, verifyResult };
  app.decorate("metrics", metrics);
  return metrics;
}

/** Mirrors a counter kept elsewhere (it only grows) into a Prometheus counter at scrape time. */
function mirrorCounter(registry: Registry, name: string, help: string, labelName: string, read: () => Record<string, number>): void {
  new Counter({
    name,
    help,
    labelNames: [labelName],
    registers: [registry],
    collect() {
      this.reset();
      for (const [label, value] of Object.entries(read())) this.inc({ [labelName]: label }, value);
    },
  });
}

/** The verify hot path: cache use, cache size, the argon2 pool. */
export function registerKeyMetrics(metrics: Metrics, keys: KeyServices): void {
  const { registry } = metrics;
  mirrorCounter(
    registry,
    "tenant_registry_verify_cache_lookups_total",
    "Verifies answered from memory alone (cached) or that needed SQL or argon2 (loaded); hit ratio = cached / all.",
    "outcome",
    () => ({ ...keys.verifier.lookups }),
  );
  mirrorCounter(
    registry,
    "tenant_registry_argon2_hashes_total",
    "argon2id hashes computed (hashed), dropped after waiting past their deadline (rejected), or refused for a full queue (shed).",
    "outcome",
    () => {
      const s = keys.argon2.stats();
      return { hashed: s.hashed, rejected: s.rejected, shed: s.shed };
    },
  );
  new Gauge({
    name: "tenant_registry_argon2_queue_depth",
    help: "Key hashes waiting for a hashing thread.",
    registers: [registry],
    collect() {
      this.set(keys.argon2.stats().queued);
    },
  });
  new Gauge({
    name: "tenant_registry_argon2_refusals_held",
    help: "Refusals for a full queue being held before they are answered (the tarpit; bounded).",
    registers: [registry],
    collect() {
      this.set(keys.argon2.stats().held);
    },
  });
  new Gauge({
    name: "tenant_registry_verify_cache_entries",
    help: "Entries in the verify caches, by kind; listening is 1 while change notifications flow.",
    labelNames: ["kind"] as const,
    registers: [registry],
    collect() {
      const s = keys.cache.stats();
      for (const kind of ["proofs", "keys", "tenants", "misses"] as const) this.set({ kind }, s[kind]);
      this.set({ kind: "listening" }, s.listening ? 1 : 0);
    },
  });
}

export async function metricsRoutes(app: App): Promise<void> {
  app.get(
    "/metrics",
    {
      config: { roles: ["admin", "auditor"] },
      schema: {
        tags: ["operations"],
        summary: "Prometheus metrics",
        description: "Text exposition format. Scrape with a bearer token of role auditor.",
        produces: ["text/plain"],
        response: { 200: Type.String() },
      },
    },
    async (_req, reply) => {
      reply.type(app.metrics.registry.contentType);
      return app.metrics.registry.metrics();
    },
  );
}
