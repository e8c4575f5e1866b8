import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/**
 * A webhook receiver on 127.0.0.1 (random port) that records every request
 * and answers what `answer` says (default 204). `inFlight`/`maxInFlight`
 * count requests being answered at once.
 */
export interface Receiver {
  url: string;
  received: Received[];
  answer: (r: Received) => number | Promise<number>;
  maxInFlight: number;
  /** Every request received, verified with the official standardwebhooks package against `secret`; returns the parsed bodies. */
  verifyAll(secret: string): { type: string; timestamp: string; data: Record<string, unknown> }[];
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(path = "/hook", port = 0): Promise<Receiver> {
  let inFlight = 0;
  const r: Receiver = {
    url: "",
    received: [],
    answer: () => 204,
    maxInFlight: 0,
    verifyAll(secret) {
      const wh = new Webhook(secret);
      return r.received.map(
        (x) => wh.verify(x.body, x.headers as Record<string, string>) as { type: string; timestamp: string; data: Record<string, unknown> },
      );
    },
    async waitFor(n, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (r.received.length < n) {
        if (Date.now() > until) throw new Error(`receiver got ${r.received.length} requests, expected ${n}`);
        await new Promise((res) => setTimeout(res, 20));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      inFlight++;
      r.maxInFlight = Math.max(r.maxInFlight, inFlight);
      const got: Received = { headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now() };
      r.received.push(got);
      try {
        const status = await r.answer(got);
        res.writeHead(status).end();
      } catch {
        res.destroy();
      } finally {
        inFlight--;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  return r;
}
