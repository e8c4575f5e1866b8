import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSOLE_CSP, consoleRoutes } from "../../src/http/console.js";
import { registerErrorHandling } from "../../src/http/errors.js";
import type { App } from "../../src/http/types.js";
import { openTestApp, type TestApp } from "../helpers/app.js";

/** The console plugin on its own, over a built-looking folder (or an empty one), so this runs without a build. */
async function consoleApp(root: string): Promise<App> {
  const app = Fastify() as unknown as App;
  registerErrorHandling(app);
  await app.register(consoleRoutes, { root });
  await app.ready();
  return app;
}

describe("the console's static serving", () => {
  const built = mkdtempSync(join(tmpdir(), "tr-console-"));
  const empty = mkdtempSync(join(tmpdir(), "tr-console-empty-"));
  let app: App;
  let bare: App;
  beforeAll(async () => {
    mkdirSync(join(built, "assets"));
    writeFileSync(join(built, "index.html"), '<!doctype html><script type="module" src="/console/assets/index-AbC123.js"></script>');
    writeFileSync(join(built, "assets", "index-AbC123.js"), "console.log(1)");
    app = await consoleApp(built);
    bare = await consoleApp(empty);
  });
  afterAll(async () => {
    await app.close();
    await bare.close();
    rmSync(built, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
  });

  it("serves index.html, not cached, for /console/ and any deep link below it", async () => {
    for (const url of ["/console/", "/console/tenants", "/console/tenants/6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10", "/console/nope/deeper"]) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers["content-type"]).toMatch(/^text\/html/);
      expect(res.headers["cache-control"]).toBe("no-cache");
      expect(res.body).toContain("index-AbC123.js");
    }
  });

  it("serves hashed assets with a year-long immutable cache and 404s a missing one as a problem", async () => {
    const asset = await app.inject({ url: "/console/assets/index-AbC123.js" });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers["content-type"]).toMatch(/javascript/);
    expect(asset.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    const missing = await app.inject({ url: "/console/assets/index-gone.js" });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers["content-type"]).toMatch(/^application\/problem\+json/);
  });

  it("never leaves the build folder", async () => {
    for (const url of ["/console/../package.json", "/console/assets/../../package.json", "/console/%2e%2e/%2e%2e/package.json"]) {
      const res = await app.inject({ url });
      expect(res.body, url).not.toContain('"name"');
    }
  });

  it("sends a CSP without inline scripts that forbids framing, on pages and problems alike", async () => {
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).not.toContain("unsafe-inline");
    expect(CONSOLE_CSP).not.toContain("unsafe-eval");
    expect(CONSOLE_CSP).toContain("frame-ancestors 'none'");
    for (const res of [await app.inject({ url: "/console/" }), await app.inject({ url: "/console/assets/index-gone.js" })]) {
      expect(res.headers["content-security-policy"]).toBe(CONSOLE_CSP);
      expect(res.headers["x-frame-options"]).toBe("DENY");
    }
  });

  it("redirects /console to /console/", async () => {
    const res = await app.inject({ url: "/console" });
    expect(res.statusCode).toBe(301);
    expect(res.headers.location).toBe("/console/");
  });

  it("says to run the build when there is none: a 503 problem, not a blank page", async () => {
    const res = await bare.inject({ url: "/console/tenants" });
    expect(res.statusCode).toBe(503);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ code: "unavailable", detail: expect.stringContaining("npm run build") });
  });
});

describe("the console in the registry", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp("pglite");
  });
  afterAll(() => t.close());

  it("is public (static) while /v1 still needs a token, and the CSP stays off the API", async () => {
    const page = await t.call(null, "GET", "/console/");
    expect([200, 503]).toContain(page.statusCode);
    expect(page.headers["content-security-policy"]).toBe(CONSOLE_CSP);
    const api = await t.call(null, "GET", "/v1/me");
    expect(api.statusCode).toBe(401);
    expect(api.headers["content-security-policy"]).toBeUndefined();
  });
});
