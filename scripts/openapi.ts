/**
 * Regenerates openapi.json from the route schemas (`npm run openapi`), or
 * with --check fails when the committed document differs (CI drift check).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { generateOpenApi } from "./openapi-document.js";

const file = fileURLToPath(new URL("../openapi.json", import.meta.url));
const generated = await generateOpenApi();

if (process.argv.includes("--check")) {
  let committed = "";
  try {
    committed = readFileSync(file, "utf8");
  } catch {}
  if (committed !== generated) {
    process.stderr.write("openapi.json is out of date: run `npm run openapi` and commit the result.\n");
    process.exit(1);
  }
  process.stdout.write("openapi.json is up to date\n");
} else {
  writeFileSync(file, generated);
  process.stdout.write("wrote openapi.json\n");
}
