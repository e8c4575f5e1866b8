import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { startServer } from "../../src/server.js";
import { newTestToken } from "../helpers/app.js";

/** Send `raw` and resolve with everything the server answered once it closes the connection. */
function rawExchange(port: number, raw: string): Promise<{ answer: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let answer = "";
    const socket = connect(port, "127.0.0.1", () => socket.write(raw));
    socket.on("data", (d) => {
      answer += d.toString();
    });
    socket.on("close", () => resolve({ answer, ms: Date.now() - started }));
    socket.on("error", reject);
  });
}

describe("the HTTP listener", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tr-listen-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("closes a connection whose headers do not arrive in time with 408", async () => {
    const config = loadConfig({
      DATABASE_URL: "memory:",
      REGISTRY_ADMIN_TOKEN: newTestToken(),
      PORT: "0",
      HTTP_HEADERS_TIMEOUT_MS: "1000",
    });
    const running = await startServer(config, createLogger("silent"));
    try {
      const port = Number(new URL(running.url).port);
      // Headers started, never finished: a slow-header client.
      const slow = await rawExchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
      expect(slow.answer).toMatch(/^HTTP\/1\.1 408/);
      expect(slow.ms).toBeLessThan(10_000);
      // A complete request on the same server is served.
      const res = await fetch(`${running.url}/healthz`);
      expect(res.status).toBe(200);
    } finally {
      await running.stop();
    }
  }, 60_000);

  it("refuses a taken port before it opens the store or mints a token", async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const address = taken.address();
    const port = typeof address === "object" && address ? address.port : 0;
    try {
      const config = loadConfig({ DATA_DIR: dataDir, PORT: String(port) });
      await expect(startServer(config, createLogger("silent"))).rejects.toThrow(`127.0.0.1:${port} is already in use`);
      expect(existsSync(join(dataDir, "admin-token"))).toBe(false);
      expect(existsSync(join(dataDir, "PG_VERSION"))).toBe(false);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it("logs health and readiness probes at debug, not at info", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(...chunk.toString().split("\n").filter(Boolean));
        done();
      },
    });
    const config = loadConfig({ DATABASE_URL: "memory:", REGISTRY_ADMIN_TOKEN: newTestToken(), PORT: "0", LOG_LEVEL: "debug" });
    const running = await startServer(config, createLogger("debug", sink));
    try {
      expect((await fetch(`${running.url}/readyz`)).status).toBe(200);
      expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${running.url}/openapi.json`)).status).toBe(200);
    } finally {
      await running.stop();
    }
    const records = lines.map((l) => JSON.parse(l) as { level: number; msg: string; url?: string; req?: { url: string } });
    const probes = records.filter(
      (r) => r.url === "/readyz" || r.url === "/healthz" || r.req?.url === "/readyz" || r.req?.url === "/healthz",
    );
    expect(probes.map((r) => [r.msg, r.level])).toEqual([
      ["probe", 20],
      ["probe", 20],
    ]);
    // Other requests are still logged at info.
    expect(records.some((r) => r.req?.url === "/openapi.json" && r.level === 30)).toBe(true);
  }, 60_000);
});
