import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { transformSync } from "esbuild";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Where the tests' compiled server lives: `src/` transpiled file by file to
 * plain JavaScript, in the layout `npm run build` gives dist/ (one level
 * below the package root, so `../package.json`, `../catalog.json`, the
 * migrations beside the store and the argon2 worker beside its pool are
 * found the same way). Git ignores it.
 */
export const COMPILED = join(ROOT, ".test-build");
/** The CLI entry of the compiled server: what test/helpers/process.ts runs. */
export const COMPILED_CLI = join(COMPILED, "cli.js");
/** The client package's sources, compiled beside the server (dist/ would need `npm run build`). */
const CLIENT_DIR = join(COMPILED, "client-package");

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) yield path;
  }
}

/** Write only what changed, through a rename, so a run already using a file never reads half of one. */
function put(path: string, text: string): void {
  if (existsSync(path) && readFileSync(path, "utf8") === text) return;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function compileTree(from: string, to: string, rewrite: (file: string, code: string) => string): number {
  let n = 0;
  for (const file of sources(from)) {
    const out = join(to, relative(from, file)).replace(/\.ts$/, ".js");
    const { code } = transformSync(readFileSync(file, "utf8"), {
      loader: "ts",
      format: "esm",
      target: "node20",
      sourcefile: file,
      sourcemap: "inline",
      tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true } },
    });
    put(out, rewrite(out, code));
    n++;
  }
  return n;
}

/**
 * Spawned servers and CLI runs start from plain JavaScript instead of
 * through tsx: no loader thread, no per-module transform in every process
 * and in each of its argon2 worker threads. esbuild transpiles the way tsx
 * does (types stripped, nothing bundled), so the code under test is the
 * same. Takes well under a second; called once per test run (global-setup).
 */
export function compileForTests(): { files: number; ms: number } {
  const started = performance.now();
  let files = compileTree(join(ROOT, "packages", "client", "src"), CLIENT_DIR, (_file, code) => code);
  files += compileTree(join(ROOT, "src"), COMPILED, (file, code) => {
    // The client package resolves to its dist/ through node_modules; point at the compiled sources instead.
    let spec = relative(dirname(file), join(CLIENT_DIR, "index.js"));
    if (!spec.startsWith(".")) spec = `./${spec}`;
    return code.replaceAll('from "@tenant-registry/client"', `from ${JSON.stringify(spec)}`);
  });
  cpSync(join(ROOT, "src", "store", "migrations"), join(COMPILED, "store", "migrations"), { recursive: true });
  return { files, ms: performance.now() - started };
}
