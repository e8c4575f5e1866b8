/**
 * The subscribers of `bench/fanout`, in a process of their own so that
 * reading 2,000 streams does not share the load generator's event loop.
 * Forked with IPC: opens `count` audit streams spread over the given
 * tokens, says "ready", and on "report" answers how many streams got every
 * expected event exactly once.
 */
import { request } from "node:http";

interface Start {
  url: string;
  path: string;
  tokens: string[];
  count: number;
}

interface Stream {
  ids: string[];
  status: number;
  ended: boolean;
}

const streams: Stream[] = [];

function open(url: string, path: string, token: string): Promise<Stream> {
  return new Promise((resolve) => {
    const s: Stream = { ids: [], status: 0, ended: false };
    const req = request(`${url}${path}`, { headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" }, agent: false });
    req.on("response", (res) => {
      s.status = res.statusCode ?? 0;
      res.setEncoding("utf8");
      let buf = "";
      res.on("data", (chunk: string) => {
        buf += chunk;
        let cut = buf.lastIndexOf("\n\n");
        if (cut < 0) return;
        const done = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        for (const m of done.matchAll(/^id: (\d+)$/gm)) s.ids.push(m[1] as string);
        cut = 0;
      });
      res.on("end", () => {
        s.ended = true;
      });
      res.on("error", () => {
        s.ended = true;
      });
      resolve(s);
    });
    req.on("error", () => {
      s.ended = true;
      resolve(s);
    });
    req.end();
  });
}

process.on("message", async (msg: { start?: Start; report?: { expected: string[] }; stop?: true }) => {
  if (msg.start) {
    const { url, path, tokens, count } = msg.start;
    for (let i = 0; i < count; i += 50) {
      const batch = Array.from({ length: Math.min(50, count - i) }, (_, j) => open(url, path, tokens[(i + j) % tokens.length] as string));
      streams.push(...(await Promise.all(batch)));
    }
    process.send?.({ ready: streams.filter((s) => s.status === 200).length, statuses: streams.map((s) => s.status) });
  } else if (msg.report) {
    // Every expected id, once each, in order (other events may come between: a stream sees all it matches).
    const expected = msg.report.expected;
    let complete = 0;
    let ended = 0;
    for (const s of streams) {
      if (s.ended) ended++;
      const seen = new Set(s.ids);
      if (seen.size === s.ids.length && expected.every((id) => seen.has(id))) complete++;
    }
    process.send?.({ complete, ended, open: streams.length });
  } else if (msg.stop) {
    process.exit(0);
  }
});
