/**
 * Summarizes a .cpuprofile of the protected product (PROFILE=1 npm run bench
 * product writes them to .profiles/product/): the share of the process's busy
 * time spent in the client package's own code, in hashing, and in building
 * `req.headers` (node builds it lazily, on first access), then the top
 * frames by self time. `npx tsx bench/product/profile.ts <file.cpuprofile>`.
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
const file = process.argv[2];
if (!file) throw new Error("usage: profile.ts <file.cpuprofile>");
const profile = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
let busy = 0;
const groups = { client: 0, hashing: 0, headers: 0 };
profile.samples.forEach((id, i) => {
  const frame = byId.get(id)?.callFrame;
  const us = profile.timeDeltas[i] ?? 0;
  if (!frame || frame.functionName === "(idle)") return;
  busy += us;
  const where = frame.url.split("/").slice(-2).join("/");
  const name = `${frame.functionName || "(anonymous)"} ${where}:${frame.lineNumber + 1}`;
  self.set(name, (self.get(name) ?? 0) + us);
  if (frame.url.includes("packages/client/dist/")) groups.client += us;
  else if (/crypto\/hash|node:crypto/.test(frame.url) || /^(Hash|digest|update|createHash)$/.test(frame.functionName)) groups.hashing += us;
  else if (/^(_addHeaderLine|matchKnownFields|get headers)$/.test(frame.functionName)) groups.headers += us;
});
const pct = (us: number) => `${((100 * us) / busy).toFixed(1)} %`;
process.stdout.write(
  `busy (non-idle) time ${(busy / 1e6).toFixed(1)} s; client package code ${pct(groups.client)}, ` +
    `hashing ${pct(groups.hashing)}, building req.headers ${pct(groups.headers)}\n`,
);
for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20)) process.stdout.write(`${pct(us).padStart(7)}  ${name}\n`);
