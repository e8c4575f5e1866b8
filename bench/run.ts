/**
 * `npm run bench [name...]`: runs each benchmark in bench/<name>/main.ts, in
 * its own process, one after another (they must not share the machine).
 * Benchmarks report ratios against a baseline measured in the same run.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const all = readdirSync(dir, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(`${dir}${d.name}/main.ts`))
  .map((d) => d.name)
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(", ")}; have: ${all.join(", ") || "none"}\n`);
  process.exit(2);
}
let failed = false;
for (const name of wanted.length ? wanted : all) {
  process.stdout.write(`\n=== bench/${name} ===\n`);
  const res = spawnSync(process.execPath, ["--import", "tsx", `${dir}${name}/main.ts`], { stdio: "inherit", env: process.env });
  if (res.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
