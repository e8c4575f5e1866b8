import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, onResponseHookHandler } from "fastify";
import type { Authenticate } from "./auth.js";
import type { Metrics } from "./metrics.js";
import type { Recorder } from "./request-metrics.js";
import { securityHeadersFor } from "./security-headers.js";

export interface PreludeOptions {
  /** Resolves the request to a principal and checks it against the route's roles; throws the refusal, or returns a promise when the store must be asked (auth.ts). */
  authenticate: Authenticate;
  metrics: Metrics;
}

const asArray = <T>(hooks: T | T[] | undefined): T[] => (hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]);

/**
 * What every request of a route goes through, built once per route as the
 * route is added (onRoute), so that a request pays one hook call on the
 * way in and one on the way out, and looks nothing up:
 * - first, its id back in `X-Request-Id` (so even a refusal carries it), the
 *   security headers for the route's path (security-headers.ts), and
 *   authentication against the route's roles (auth.ts);
 * - last, once answered, its count and latency in the metrics, under the
 *   route's pattern.
 * Requests no route matches get the same from the 404 handler (not-found.ts).
 * Register before any route.
 */
export function registerPrelude(app: FastifyInstance, opts: PreludeOptions): void {
  app.addHook("onRoute", (route) => {
    const headers = securityHeadersFor(route.url);
    const roles = route.config?.roles;
    const onRequest: onRequestHookHandler =
      roles === undefined
        ? (req, reply, done) => {
            reply.header("x-request-id", req.id);
            reply.headers(headers);
            done();
          }
        : (req, reply, done) => {
            reply.header("x-request-id", req.id);
            reply.headers(headers);
            let pending: void | Promise<void>;
            try {
              pending = opts.authenticate(req, roles);
            } catch (err) {
              return done(err as Error);
            }
            // Settled at once on the hot path; only a credential the store must look up waits.
            if (pending === undefined) return done();
            pending.then(() => done(), done);
          };
    route.onRequest = [onRequest, ...asArray(route.onRequest)];
    route.onResponse = [...asArray(route.onResponse), responseRecorder(opts.metrics, route.method, route.url)];
  });
}

/** The onResponse hook that counts a route's answers: bound to its method, or, for a route of several methods, per method. */
function responseRecorder(metrics: Metrics, method: string | string[], url: string): onResponseHookHandler {
  if (typeof method === "string") {
    const record = metrics.requests.recorder(method, url);
    return (_req, reply, done) => {
      record(reply.statusCode, reply.elapsedTime / 1000);
      done();
    };
  }
  const recorderFor = methodRecorders(metrics, url);
  return (req, reply, done) => {
    recorderFor(req.method)(reply.statusCode, reply.elapsedTime / 1000);
    done();
  };
}

/**
 * The recorders of one route pattern, one per method, made on first use.
 * Node's parser knows a few dozen methods; past 16 they count as "OTHER".
 */
function methodRecorders(metrics: Metrics, route: string): (method: string) => Recorder {
  const byMethod = new Map<string, Recorder>();
  return (method) => {
    const m = byMethod.has(method) || byMethod.size < 16 ? method : "OTHER";
    let record = byMethod.get(m);
    if (record === undefined) {
      record = metrics.requests.recorder(m, route);
      byMethod.set(m, record);
    }
    return record;
  };
}

/** For answers outside any route (404, 405, the router's own errors): the same headers, and the count under route "unmatched". */
export function unmatchedPrelude(metrics: Metrics): {
  begin(req: FastifyRequest, reply: FastifyReply): void;
  end(req: FastifyRequest, reply: FastifyReply): void;
} {
  const recorderFor = methodRecorders(metrics, "unmatched");
  return {
    begin(req, reply) {
      reply.header("x-request-id", req.id);
      reply.headers(securityHeadersFor(req.url));
    },
    end(req, reply) {
      recorderFor(req.method)(reply.statusCode, reply.elapsedTime / 1000);
    },
  };
}
