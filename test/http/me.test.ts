import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";

describe.each(ENGINES)("GET /v1/me on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
  });
  afterAll(() => t.close());

  describe("happy", () => {
    it("names the calling principal and its role, for every role", async () => {
      const expected = { admin: "admin", service: "products", auditor: "compliance" } as const;
      for (const role of ["admin", "service", "auditor"] as const) {
        const res = await t.call(role, "GET", "/v1/me");
        expect(res.statusCode).toBe(200);
        expect(res.headers["cache-control"]).toBe("no-store");
        expect(res.json()).toEqual({ name: expected[role], role, kind: "bootstrap" });
      }
    });

    it("answers for the principal, not for the person named by X-Actor-Id", async () => {
      const res = await t.call("auditor", "GET", "/v1/me", undefined, { "x-actor-id": "dana@example.com" });
      expect(res.json()).toEqual({ name: "compliance", role: "auditor", kind: "bootstrap" });
    });
  });

  describe("error", () => {
    it("rejects query parameters (typos fail loudly)", async () => {
      const res = await t.call("admin", "GET", "/v1/me?verbose=1");
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe("invalid_input");
    });
  });

  describe("security", () => {
    it("needs a token: 401 problem without one or with a wrong one", async () => {
      const none = await t.call(null, "GET", "/v1/me");
      expect(none.statusCode).toBe(401);
      expect(none.headers["content-type"]).toMatch(/^application\/problem\+json/);
      const wrong = await t.app.inject({ method: "GET", url: "/v1/me", headers: { authorization: "Bearer not-a-token" } });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.body).not.toContain("not-a-token");
    });
  });
});
