import { type DestinationStream, type Logger, pino } from "pino";
import type { Config } from "./config.js";

/**
 * The one logger (Fastify's own, pino). Credentials never reach a line:
 * request logs carry method, url and ids but no headers or bodies, and the
 * paths below are censored should anything log them anyway.
 */
export const REDACT_PATHS = [
  "req.headers.authorization",
  'req.headers["x-api-key"]',
  "headers.authorization",
  "req.body.key",
  "body.key",
  "key",
  "token",
  "authorization",
];

export function createLogger(level: Config["logLevel"], destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: REDACT_PATHS, censor: "[redacted]" } };
  return destination ? pino(options, destination) : pino(options);
}
