/**
 * Regenerates openapi.json from the route schemas and the client's types from
 * openapi.json (`npm run openapi`), or with --check fails when either committed
 * file differs (CI drift check).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { generateClientTypes, generateOpenApi } from "./openapi-document.js";

const documentFile = fileURLToPath(new URL("../openapi.json", import.meta.url));
const typesFile = fileURLToPath(new URL("../packages/client/src/openapi.ts", import.meta.url));
const document = await generateOpenApi();
const outputs: [file: string, name: string, text: string][] = [
  [documentFile, "openapi.json", document],
  [typesFile, "packages/client/src/openapi.ts", await generateClientTypes(document)],
];

const read = (file: string) => {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
};

if (process.argv.includes("--check")) {
  const stale = outputs.filter(([file, , text]) => read(file) !== text).map(([, name]) => name);
  if (stale.length) {
    process.stderr.write(`${stale.join(" and ")} out of date: run \`npm run openapi\` and commit the result.\n`);
    process.exit(1);
  }
  process.stdout.write("openapi.json and the client types are up to date\n");
} else {
  for (const [file, name, text] of outputs) {
    writeFileSync(file, text);
    process.stdout.write(`wrote ${name}\n`);
  }
}
