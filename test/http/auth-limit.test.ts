import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthFailureLimiter } from "../../src/http/auth-limit.js";
import { openTestApp, type TestApp } from "../helpers/app.js";

describe("auth failure rate limit", () => {
  let t: TestApp;
  beforeAll(async () => {
    // inject connects from 127.0.0.1: the one proxy in front.
    t = await openTestApp("pglite", undefined, { AUTH_FAILURE_LIMIT: "5", TRUST_PROXY: "127.0.0.1" });
  });
  afterAll(() => t.close());

  const from = (ip: string, token: string) =>
    t.app.inject({ method: "GET", url: "/v1/tenants", headers: { authorization: `Bearer ${token}`, "x-forwarded-for": ip } });

  it("answers an address's failures with 429 and Retry-After past the limit; its valid tokens still pass", async () => {
    for (let i = 0; i < 5; i++) expect((await from("203.0.113.7", "wrong-token-guess-0000")).statusCode).toBe(401);
    const limited = await from("203.0.113.7", "wrong-token-guess-0000");
    expect(limited.statusCode).toBe(429);
    expect(limited.json().code).toBe("rate_limited");
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    // A service behind the same address with a good token is not taken down by a neighbour's stale one.
    expect((await from("203.0.113.7", t.tokens.admin)).statusCode).toBe(200);
    expect((await from("203.0.113.7", "wrong-token-guess-0001")).statusCode).toBe(429);
  });

  it("other addresses are unaffected", async () => {
    expect((await from("198.51.100.9", t.tokens.admin)).statusCode).toBe(200);
  });

  it("reads the client address from the right: rotating the left of X-Forwarded-For does not escape the limit", async () => {
    // What a client sends is kept on the left; the trusted proxy appends the address it saw.
    const spoofed = (i: number) => `10.${i}.0.1, 192.0.2.${i % 250}, 203.0.113.50`;
    for (let i = 0; i < 5; i++) expect((await from(spoofed(i), "wrong-token-guess-0002")).statusCode).toBe(401);
    expect((await from(spoofed(99), "wrong-token-guess-0002")).statusCode).toBe(429);
    expect((await from("203.0.113.50", "wrong-token-guess-0002")).statusCode).toBe(429);
  });

  it("counts failures in the metrics", async () => {
    const res = await t.call("auditor", "GET", "/metrics");
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/tenant_registry_auth_failures_total\{reason="invalid"\} [1-9]/);
    expect(res.body).toMatch(/tenant_registry_auth_failures_total\{reason="rate_limited"\} [1-9]/);
  });
});

describe("AuthFailureLimiter", () => {
  it("forgets an address when its window ends", () => {
    const l = new AuthFailureLimiter(2, 1000);
    l.recordFailure("a", 0);
    l.recordFailure("a", 10);
    expect(l.retryAfter("a", 20)).toBe(1);
    expect(l.retryAfter("a", 1001)).toBe(0);
  });

  it("keeps at most maxKeys addresses", () => {
    const l = new AuthFailureLimiter(1, 60_000, 100);
    for (let i = 0; i < 1000; i++) l.recordFailure(`10.0.${i >> 8}.${i & 255}`, 0);
    expect(l.size).toBe(100);
  });
});

describe("TRUST_PROXY as a hop count", () => {
  it("takes the address the nearest trusted proxy saw", async () => {
    const t = await openTestApp("pglite", undefined, { AUTH_FAILURE_LIMIT: "2", TRUST_PROXY: "1" });
    try {
      const from = (xff: string) =>
        t.app.inject({
          method: "GET",
          url: "/v1/tenants",
          headers: { authorization: "Bearer wrong-token-guess-0003", "x-forwarded-for": xff },
        });
      for (let i = 0; i < 2; i++) expect((await from(`10.0.0.${i}, 198.51.100.77`)).statusCode).toBe(401);
      expect((await from("10.0.0.9, 198.51.100.77")).statusCode).toBe(429);
      expect((await from("198.51.100.78")).statusCode).toBe(401);
    } finally {
      await t.close();
    }
  });
});
