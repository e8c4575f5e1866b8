import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { translateDbError } from "../../src/store/errors.js";

describe("database errors keep their cause for the logs", () => {
  it("an outage logs as the AppError with the driver's message appended, never a bare object", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString("utf8"));
        cb();
      },
    });
    const err = translateDbError(new Error("Connection terminated unexpectedly"));
    expect(err.code).toBe("unavailable");
    expect((err.cause as Error).message).toBe("Connection terminated unexpectedly");
    createLogger("info", sink).warn({ err }, "webhook worker: claim failed; retrying on the next wake-up");
    const logged = JSON.parse(lines.join("")) as { err: { type: string; message: string; stack: string } };
    expect(logged.err.type).toBe("AppError");
    expect(logged.err.message).toBe("the database is unavailable; retry shortly: Connection terminated unexpectedly");
    expect(logged.err.stack).toContain("caused by: Error: Connection terminated unexpectedly");
  });
});
