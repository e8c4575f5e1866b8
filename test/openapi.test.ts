import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { generateClientTypes, generateOpenApi } from "../scripts/openapi-document.js";
import { openTestApp } from "./helpers/app.js";

describe("OpenAPI document", () => {
  it("the committed openapi.json is what the server generates (run `npm run openapi`)", async () => {
    const committed = readFileSync(new URL("../openapi.json", import.meta.url), "utf8");
    expect(await generateOpenApi()).toBe(committed);
  });

  it("the committed client types are what openapi-typescript makes of openapi.json (run `npm run openapi`)", async () => {
    const committed = readFileSync(new URL("../packages/client/src/openapi.ts", import.meta.url), "utf8");
    const document = readFileSync(new URL("../openapi.json", import.meta.url), "utf8");
    expect(await generateClientTypes(document)).toBe(committed);
  });

  it("is served at /openapi.json without a token, as OpenAPI 3.1 with every /v1 route", async () => {
    const t = await openTestApp("pglite");
    try {
      const res = await t.call(null, "GET", "/openapi.json");
      expect(res.statusCode).toBe(200);
      const doc = res.json();
      expect(doc.openapi).toBe("3.1.0");
      for (const r of t.app.routeTable.filter((x) => x.roles && x.method !== "HEAD")) {
        const path = r.url.replace(/:(\w+)/g, "{$1}");
        expect(doc.paths[path]?.[r.method.toLowerCase()], `${r.method} ${path}`).toBeDefined();
        expect(doc.paths[path][r.method.toLowerCase()].security).toEqual([{ bearer: [] }]);
      }
      expect((await t.call(null, "GET", "/docs/")).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});
