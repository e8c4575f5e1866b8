/**
 * `npm run check:engines`: every package in the lockfile that declares
 * `engines.node` must accept every Node version this project's `engines`
 * allows, so `npm ci` never warns EBADENGINE on a supported Node. A package
 * that wants a newer Node is pinned or replaced through `overrides`.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const semver = createRequire(import.meta.url)("semver");
const root = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const lock = JSON.parse(readFileSync(new URL("../package-lock.json", import.meta.url), "utf8"));
const ours = root.engines.node;
const bad = Object.entries(lock.packages)
  .filter(([path, meta]) => path !== "" && meta.engines?.node && !semver.subset(ours, meta.engines.node))
  .map(([path, meta]) => `  ${path.replace(/^.*node_modules\//, "")}@${meta.version ?? "workspace"} wants node ${meta.engines.node}`);
if (bad.length) {
  process.stderr.write(`packages that do not run on every Node that engines (${ours}) allows:\n${bad.join("\n")}\n`);
  process.exit(1);
}
process.stdout.write(`every locked package runs on node ${ours}\n`);
