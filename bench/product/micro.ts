/**
 * The middleware's per-request work alone, in this process: `registryAuth`
 * from the compiled client package, its cache warm and its change feed live
 * (a stand-in registry answers through the `fetch` option: one valid verify
 * answer, heartbeats every 500 ms), called with a node:http-shaped request
 * in a loop, against a middleware that only calls next(). Prints the CPU
 * time per call in ns and the heap allocated per call. Run by main.ts; alone:
 * `npx tsx bench/product/micro.ts` after building packages/client.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

type Client = typeof import("@tenant-registry/client");
type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

const CALLS = 200_000;
const BATCH = 1000;

export async function micro(): Promise<{ ns: number; baselineNs: number; bytes: number; baselineBytes: number; live: boolean }> {
  const { registryAuth }: Client = await import(new URL("../../packages/client/dist/index.js", import.meta.url).href);
  const encoder = new TextEncoder();
  const standIn: typeof fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (url.endsWith("/v1/internal/changes")) {
      let timer: ReturnType<typeof setInterval> | undefined;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          const beat = () => controller.enqueue(encoder.encode("event: heartbeat\ndata: {}\n\n"));
          beat();
          timer = setInterval(beat, 500);
          init?.signal?.addEventListener("abort", () => {
            clearInterval(timer);
            controller.error(new Error("aborted"));
          });
        },
        cancel: () => clearInterval(timer),
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    }
    const answer = { valid: true, key_id: "k", tenant_id: "t", product: "crm", scopes: ["read"], expires_at: null };
    return new Response(JSON.stringify(answer), { headers: { "content-type": "application/json" } });
  };
  const auth = registryAuth({ url: "http://registry.invalid", token: "t", product: "crm", scope: "read", fetch: standIn });
  const headers = {
    host: "127.0.0.1:3000",
    connection: "keep-alive",
    "x-api-key": "bp_0123456789a_bcdefghijklmnopqrstuvwxyz0123",
    "user-agent": "autocannon",
  };
  const req = { headers } as unknown as IncomingMessage;
  const res = {} as ServerResponse;
  const bare: Middleware = (_req, _res, next) => next();

  async function measure(mw: Middleware): Promise<{ ns: number; bytes: number }> {
    let done = 0;
    let wake: (() => void) | undefined;
    const next = () => {
      done++;
      if (done % BATCH === 0) wake?.();
    };
    // CPU time, not wall time: the machine may be shared.
    const t0 = process.cpuUsage();
    const heap0 = process.memoryUsage().heapUsed;
    let allocated = 0;
    for (let i = 0; i < CALLS; i += BATCH) {
      for (let j = 0; j < BATCH; j++) mw(req, res, next);
      if (done < i + BATCH) await new Promise<void>((r) => (wake = r));
      // Let timers and I/O run (the feed's heartbeats), as a server does between requests.
      await new Promise((r) => setImmediate(r));
      // Heap growth between collections, summed: bytes allocated per call (approximately; GC runs reset it).
      const heap = process.memoryUsage().heapUsed;
      allocated += Math.max(0, heap - (i === 0 ? heap0 : last));
      last = heap;
    }
    const used = process.cpuUsage(t0);
    const ns = ((used.user + used.system) * 1000) / CALLS;
    return { ns, bytes: allocated / CALLS };
  }
  let last = 0;

  // Fill the cache, let the feed go live, warm the JIT.
  await new Promise<void>((r) => auth(req, res, () => r()));
  for (let i = 0; i < 50 && !auth.live(); i++) await new Promise((r) => setTimeout(r, 20));
  await measure(auth as Middleware);
  await measure(bare);
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push({ auth: await measure(auth as Middleware), bare: await measure(bare) });
  const live = auth.live();
  auth.close();
  const best = <T>(xs: T[], f: (x: T) => number) => Math.min(...xs.map(f));
  return {
    ns: best(runs, (r) => r.auth.ns),
    bytes: best(runs, (r) => r.auth.bytes),
    baselineNs: best(runs, (r) => r.bare.ns),
    baselineBytes: best(runs, (r) => r.bare.bytes),
    live,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const m = await micro();
  process.stdout.write(`${JSON.stringify(m)}\n`);
}
