#!/usr/bin/env node
// Runs the compiled CLI in dist/, compiling it first when it is missing or
// older than the sources and TypeScript is installed (see scripts/build.js).
import { ensureBuilt } from "../scripts/build.js";

try {
  ensureBuilt();
} catch (err) {
  process.stderr.write(`tenant-registry: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
await import("../dist/cli.js");
