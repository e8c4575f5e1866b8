import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from "fastify";
import { LogController } from "fastify";
import type { Bindings, ChildLoggerOptions } from "pino";

const PROBES = new Set(["/healthz", "/readyz"]);
const pathOf = (url: string): string => {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
};
const isProbeRequest = (req: { url?: string }): boolean => PROBES.has(pathOf(req.url ?? ""));

/**
 * Routes that products call on every one of their own requests (verify):
 * an access-log line per call would cost a large share of their
 * throughput and drown the log. Failures are still logged with the
 * request id: every 5xx by the error handler (errors.ts), one line each,
 * and a response that failed on the socket here.
 */
const QUIET = new Set(["/v1/internal/api-keys/verify"]);
const isQuiet = (req: FastifyRequest): boolean => QUIET.has(pathOf(req.url));

/**
 * Fastify's request logging, less two kinds of request:
 * - probes (`/healthz`, `/readyz`): load balancers and orchestrators poll
 *   them every few seconds, so they are not logged at info (health.ts logs
 *   them at debug instead);
 * - quiet routes (verify): no access-log lines; a 5xx is logged once, by
 *   the error handler.
 */
export class RegistryLogController extends LogController {
  constructor() {
    super({ disableRequestLogging: isProbeRequest });
  }

  override incomingRequest(request: FastifyRequest, reply: FastifyReply): void {
    if (isQuiet(request)) return;
    super.incomingRequest(request, reply);
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (!error && isQuiet(request)) return;
    super.requestCompleted(error, request, reply);
  }
}

/**
 * A route option (`childLoggerFactory`) for quiet routes: the request's
 * child logger (pino, bound to the request id) is made only when something
 * logs through it — a failure — rather than on every request. Everything
 * else about it is the real child's.
 */
export function lazyChildLogger(this: unknown, logger: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyChild(logger, bindings, opts) as unknown as FastifyBaseLogger;
}

type Method = "fatal" | "error" | "warn" | "info" | "debug" | "trace";

class LazyChild {
  private made: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly opts: ChildLoggerOptions,
  ) {}

  private get real(): FastifyBaseLogger {
    this.made ??= this.parent.child(this.bindings, this.opts);
    return this.made;
  }

  private log(method: Method, args: unknown[]): void {
    const real = this.real;
    Reflect.apply(real[method], real, args);
  }

  get level(): string {
    return this.made?.level ?? this.opts.level ?? this.parent.level;
  }
  set level(level: string) {
    this.real.level = level;
  }

  isLevelEnabled(level: string): boolean {
    return (this.real as unknown as { isLevelEnabled(l: string): boolean }).isLevelEnabled(level);
  }

  child(bindings: Bindings, opts?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real.child(bindings, opts);
  }

  fatal(...args: unknown[]): void {
    this.log("fatal", args);
  }
  error(...args: unknown[]): void {
    this.log("error", args);
  }
  warn(...args: unknown[]): void {
    this.log("warn", args);
  }
  info(...args: unknown[]): void {
    this.log("info", args);
  }
  debug(...args: unknown[]): void {
    this.log("debug", args);
  }
  trace(...args: unknown[]): void {
    this.log("trace", args);
  }
  silent(): void {}
}
