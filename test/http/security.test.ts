import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROLES } from "../../src/domain/roles.js";
import { isProtectedPath } from "../../src/http/auth.js";
import { openTestApp, type TestApp } from "../helpers/app.js";

/**
 * The shared security suite: every protected route, as registered, with no
 * token, a wrong token and every role it does not allow. A new route joins
 * by being registered; one without declared roles fails at start-up.
 */
describe("security: every protected route", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp("pglite");
  });
  afterAll(() => t.close());

  const concrete = (url: string) =>
    url
      .replace(/:id\b/g, "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10")
      .replace(/:slug\b/g, "acme")
      .replace(/:(\w+)/g, "x");

  it("covers the routes the contract names", () => {
    const urls = t.app.routeTable.filter((r) => r.roles).map((r) => `${r.method} ${r.url}`);
    expect(urls).toContain("POST /v1/tenants");
    for (const route of [
      "POST /v1/tokens",
      "GET /v1/tokens",
      "GET /v1/tokens/:id",
      "DELETE /v1/tokens/:id",
      "POST /v1/tokens/:id/rotate",
    ]) {
      expect(urls).toContain(route);
    }
    expect(urls.length).toBeGreaterThanOrEqual(7);
  });

  it("every /v1 route (and /metrics) declares roles; health, docs and the document are open", () => {
    for (const r of t.app.routeTable) {
      expect(Boolean(r.roles), `${r.method} ${r.url}`).toBe(isProtectedPath(r.url));
    }
    expect(isProtectedPath("/healthz") || isProtectedPath("/readyz") || isProtectedPath("/openapi.json")).toBe(false);
  });

  it("401 without a token, with a wrong token, and with a malformed header; 403 for a role not allowed", async () => {
    const routes = t.app.routeTable.filter((r) => r.roles && r.method !== "HEAD");
    for (const r of routes) {
      const url = concrete(r.url);
      const label = `${r.method} ${r.url}`;
      const none = await t.app.inject({ method: r.method as "GET", url });
      expect(none.statusCode, label).toBe(401);
      expect(none.json().code, label).toBe("unauthorized");
      // A well-formed managed token no one was given goes to the store (once: then it is a cached miss) and is refused too.
      const unknownManaged = `Bearer rt_${"7".repeat(43)}`;
      for (const authorization of [
        "Bearer not-a-real-token-at-all",
        `Basic ${t.tokens.admin}`,
        `Bearer ${t.tokens.admin}x`,
        unknownManaged,
      ]) {
        const wrong = await t.app.inject({ method: r.method as "GET", url, headers: { authorization } });
        expect(wrong.statusCode, `${label} ${authorization.slice(0, 6)}`).toBe(401);
      }
      for (const role of ROLES.filter((x) => !r.roles?.includes(x))) {
        const weak = await t.call(role, r.method, url);
        expect(weak.statusCode, `${label} as ${role}`).toBe(403);
        expect(weak.json().code).toBe("forbidden");
      }
    }
  });

  it("the auditor may GET everything it can see and change nothing", () => {
    for (const r of t.app.routeTable.filter((x) => x.roles)) {
      if (r.method !== "GET" && r.method !== "HEAD") expect(r.roles, `${r.method} ${r.url}`).not.toContain("auditor");
    }
  });
});
