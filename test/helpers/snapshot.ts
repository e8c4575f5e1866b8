import { readFileSync } from "node:fs";
import { inject } from "vitest";

/** The migrated PGlite data dir that global-setup made, ready for `openPglite({ loadDataDir })`. */
export const snapshotBlob = (): Blob => new Blob([readFileSync(inject("pgliteSnapshot"))]);
