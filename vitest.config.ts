import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Tests run the client package's sources, not its build (tsconfig.json maps the same names for tsc and tsx).
const clientSource = fileURLToPath(new URL("./packages/client/src/index.ts", import.meta.url));

export default defineConfig({
  resolve: {
    alias: [
      { find: /^@tenant-registry\/client$/, replacement: clientSource },
      { find: /^tenant-registry\/client$/, replacement: clientSource },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/helpers/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // PGlite instances are large; two workers match the two cores CI has.
    maxWorkers: 2,
    // Each worker runs its files one after another in one process, importing
    // src/, Fastify, PGlite and the rest once instead of once per file (that
    // import was about a third of the suite's CPU). Files share no state:
    // each opens its own store and app and closes them; nothing is mocked.
    isolate: false,
  },
});
