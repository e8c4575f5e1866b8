import { Type } from "@sinclair/typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../domain/errors.js";
import { ProblemRef } from "../schemas/common.js";
import { migrationsCurrent } from "../store/migrate.js";
import type { App, Deps } from "./types.js";

const Status = Type.Object({ status: Type.String() });

/** Probe requests are not access-logged at info (request-log.ts); they are logged here, at debug. */
async function logProbe(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  request.log.debug({ url: request.url, statusCode: reply.statusCode, responseTime: reply.elapsedTime }, "probe");
}

export async function healthRoutes(app: App, { db, config }: Deps): Promise<void> {
  app.get(
    "/healthz",
    { onResponse: logProbe, schema: { tags: ["health"], summary: "Liveness: 200 while the process runs", response: { 200: Status } } },
    async () => ({ status: "ok" }),
  );

  app.get(
    "/readyz",
    {
      onResponse: logProbe,
      schema: {
        tags: ["health"],
        summary: "Readiness: 200 when the store answers and migrations are applied, else 503",
        response: { 200: Status, 503: ProblemRef },
      },
    },
    async () => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AppError("unavailable", "the store did not answer in time")), config.dbTimeoutMs);
      });
      try {
        const current = await Promise.race([migrationsCurrent(db), timeout]);
        if (!current) throw new AppError("unavailable", "migrations are not applied; run `tenant-registry migrate`");
        return { status: "ready" };
      } catch (err) {
        if (err instanceof AppError && err.code === "unavailable") throw err;
        throw new AppError("unavailable", "the store does not answer");
      } finally {
        clearTimeout(timer);
      }
    },
  );
}
