import type { BaseLogger } from "pino";

/** The part of the process logger (pino, as Fastify's) that domain code writes to. */
export type Log = Pick<BaseLogger, "warn" | "error">;
