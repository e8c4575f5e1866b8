import type { Config } from "../config.js";

/**
 * The HTTP server's timeouts, as Fastify options.
 *
 * - headers: a client that has not sent its request headers in time gets 408
 *   and is closed (slow-header connections no longer linger).
 * - request: the same for the whole request, body included. Node measures
 *   it up to the end of the request only; a response that streams for hours
 *   (server-sent events) is not cut by it.
 * - keep-alive: how long an idle connection waits for its next request;
 *   above a load balancer's idle timeout (60 s on the common ones), so the
 *   balancer, not the registry, closes idle connections.
 * - no socket inactivity timeout (Fastify's connectionTimeout stays 0):
 *   it would close long-lived streams between their heartbeats.
 *
 * Node checks the headers and request deadlines every
 * connectionsCheckingInterval; 1 s keeps that check close to the settings.
 */
export function serverTimeouts(config: Config) {
  return {
    requestTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    connectionTimeout: 0,
    http: { headersTimeout: config.http.headersTimeoutMs, connectionsCheckingInterval: 1000 },
  };
}
