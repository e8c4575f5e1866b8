import openapiTS, { astToString } from "openapi-typescript";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { migrate } from "../src/store/migrate.js";
import { openPglite } from "../src/store/pglite.js";

/** The OpenAPI document exactly as the server serves it, formatted for committing. */
export async function generateOpenApi(): Promise<string> {
  // The routes need a store to be built (the audit log reads its key from it); none of them runs here.
  const db = await openPglite({ dataDir: null });
  try {
    await migrate(db);
    const app = await buildApp({ config: loadConfig({ DATABASE_URL: "memory:" }), db, logger: createLogger("silent") });
    await app.ready();
    const doc = app.swagger();
    await app.close();
    return `${JSON.stringify(doc, null, 2)}\n`;
  } finally {
    await db.close();
  }
}

/** The client's TypeScript types for an OpenAPI document (packages/client/src/openapi.ts). */
export async function generateClientTypes(document: string): Promise<string> {
  const ast = await openapiTS(document, { exportType: false, defaultNonNullable: false });
  const header = "// Generated from openapi.json by `npm run openapi` (openapi-typescript). Do not edit.\n\n";
  return header + astToString(ast);
}
