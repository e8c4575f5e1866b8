/**
 * `npm run build`: compiles the client package (packages/client/dist) and
 * the server (dist/) with tsc, copies what the server reads at run time (the
 * SQL migrations) beside the compiled code, and builds the admin console
 * with Vite into dist/console/. Plain JavaScript, so bin/tenant-registry.js
 * can call it without any TypeScript loader.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const DIST = `${ROOT}dist/`;
/** Written last: a build that stopped half way reads as stale. */
const STAMP = `${DIST}.build-stamp`;
/** What the build reads: a change to any of them makes dist/ stale. */
const INPUTS = ["src", "packages/client/src", "tsconfig.json", "tsconfig.build.json", "packages/client/tsconfig.json", "console"];

/** The tsc entry point, or null when TypeScript is not installed (a production install). */
export function findCompiler() {
  try {
    return createRequire(import.meta.url).resolve("typescript/bin/tsc");
  } catch {
    return null;
  }
}

function newest(path) {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const entry of readdirSync(path)) max = Math.max(max, newest(`${path}/${entry}`));
  return max;
}

/** True when dist/ is missing, half built, or older than any source. */
export function isStale() {
  const stamp = statSync(STAMP, { throwIfNoEntry: false });
  if (!stamp) return true;
  return INPUTS.some((input) => newest(ROOT + input) > stamp.mtimeMs);
}

/** Vite's CLI, or null when it is not installed. */
function findVite() {
  try {
    // Vite's exports do not list its bin: find it beside its package.json.
    return createRequire(import.meta.url)
      .resolve("vite/package.json")
      .replace(/package\.json$/, "bin/vite.js");
  } catch {
    return null;
  }
}

function tsc(compiler, project) {
  const res = spawnSync(process.execPath, [compiler, "-p", ROOT + project], { stdio: "inherit" });
  if (res.status !== 0) throw new Error(`tsc -p ${project} failed`);
}

export function build() {
  const compiler = findCompiler();
  if (!compiler) throw new Error("TypeScript is not installed (production install?): install dev dependencies to build");
  rmSync(DIST, { recursive: true, force: true });
  mkdirSync(DIST, { recursive: true });
  rmSync(`${ROOT}packages/client/dist`, { recursive: true, force: true });
  tsc(compiler, "packages/client/tsconfig.json");
  tsc(compiler, "tsconfig.build.json");
  cpSync(`${ROOT}src/store/migrations`, `${DIST}store/migrations`, { recursive: true });
  const vite = findVite();
  if (!vite) throw new Error("Vite is not installed (production install?): install dev dependencies to build the console");
  const res = spawnSync(process.execPath, [vite, "build", "--logLevel", "warn", "--config", `${ROOT}console/vite.config.ts`], {
    stdio: "inherit",
  });
  if (res.status !== 0) throw new Error("vite build (the console) failed");
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
}

/**
 * Before running the compiled CLI: build when dist/ is stale and TypeScript
 * is installed. Without TypeScript (after `npm prune --omit=dev`) dist/ is
 * taken as it is; only a missing dist/ is an error then.
 */
export function ensureBuilt() {
  if (!findCompiler()) {
    if (existsSync(`${DIST}cli.js`)) return;
    throw new Error("dist/ is missing and TypeScript is not installed: run `npm ci && npm run build` first");
  }
  if (!isStale()) return;
  process.stderr.write(
    existsSync(STAMP)
      ? "tenant-registry: compiling to dist/ (sources changed since the last build; this takes a minute)\n"
      : "tenant-registry: compiling to dist/ (tsc and the console's Vite build): the first start takes a minute; later starts reuse it\n",
  );
  build();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    build();
  } catch (err) {
    process.stderr.write(`build: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
