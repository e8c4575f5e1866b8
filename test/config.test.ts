import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";

const token = "a".repeat(20);

describe("config", () => {
  it("defaults to the embedded store in ./data on 127.0.0.1:8080", () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.host).toBe("127.0.0.1");
    expect(c.store).toEqual({ engine: "pglite", dataDir: "./data" });
    expect(c.principals).toEqual([]);
  });

  it("memory: is the embedded engine without a data dir", () => {
    expect(loadConfig({ DATABASE_URL: "memory:" }).store).toEqual({ engine: "pglite", dataDir: null });
  });

  it("TRUST_PROXY: false, a hop count or proxy addresses/CIDRs; true is refused", () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: "2" }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: "10.0.0.0/8, 127.0.0.1" }).trustProxy).toEqual(["10.0.0.0/8", "127.0.0.1"]);
    expect(() => loadConfig({ TRUST_PROXY: "true" })).toThrow(/TRUST_PROXY="true": .*left-most X-Forwarded-For/);
    expect(() => loadConfig({ TRUST_PROXY: "everyone" })).toThrow(ConfigError);
  });

  it("rejects a bad value with a message naming the setting and the fix", () => {
    expect(() => loadConfig({ PORT: "eighty" })).toThrow(/PORT="eighty": expected an integer from 0 to 65535/);
    expect(() => loadConfig({ DATABASE_URL: "mysql://x" })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ LOG_LEVEL: "loud" })).toThrow(ConfigError);
  });

  it("sweeps trials every minute unless TRIAL_SWEEP_INTERVAL_MS says otherwise (at least a second)", () => {
    expect(loadConfig({}).trialSweepIntervalMs).toBe(60_000);
    expect(loadConfig({ TRIAL_SWEEP_INTERVAL_MS: "5000" }).trialSweepIntervalMs).toBe(5000);
    expect(() => loadConfig({ TRIAL_SWEEP_INTERVAL_MS: "10" })).toThrow(/TRIAL_SWEEP_INTERVAL_MS="?10"?: expected milliseconds, from 1000/);
  });

  it("refuses PostgreSQL without an admin token, saying how to make one", () => {
    expect(() => loadConfig({ DATABASE_URL: "postgres://localhost/x" })).toThrow(/REGISTRY_ADMIN_TOKEN is required[\s\S]*token/);
    expect(loadConfig({ DATABASE_URL: "postgres://localhost/x", REGISTRY_ADMIN_TOKEN: token }).store.engine).toBe("postgres");
  });

  it("parses REGISTRY_TOKENS as name:role:token and checks each", () => {
    const c = loadConfig({ REGISTRY_TOKENS: `billing:service:${token}b, audit:auditor:${token}c` });
    expect(c.principals.map((p) => [p.name, p.role])).toEqual([
      ["billing", "service"],
      ["audit", "auditor"],
    ]);
    expect(() => loadConfig({ REGISTRY_TOKENS: `x:root:${token}` })).toThrow(/role must be one of admin, service, auditor/);
    expect(() => loadConfig({ REGISTRY_TOKENS: "x:service:short" })).toThrow(/at least 16/);
    expect(() => loadConfig({ REGISTRY_TOKENS: "x:service" })).toThrow(/name:role:token/);
    expect(() => loadConfig({ REGISTRY_ADMIN_TOKEN: token, REGISTRY_TOKENS: `admin:auditor:${token}x` })).toThrow(/used twice/);
    expect(() => loadConfig({ REGISTRY_TOKENS: `a:service:${token},b:auditor:${token}` })).toThrow(/reuses/);
  });

  it("echoes a rejected DATABASE_URL without its password", () => {
    for (const [url, shown] of [
      ["mysql://app:hunter2@db.internal/x", "mysql://app:***@db.internal/x"],
      ["postgres//app:p@ss:w@rd@db/x", "postgres//app:***@db/x"],
      ["app:hunter2@db", "app:***@db"],
    ]) {
      expect(() => loadConfig({ DATABASE_URL: url })).toThrow(shown);
      try {
        loadConfig({ DATABASE_URL: url });
      } catch (err) {
        expect(String(err)).not.toMatch(/hunter2|p@ss|w@rd/);
      }
    }
  });

  it("never echoes a token in its errors", () => {
    const secret = "s3cret-value-that-is-long";
    try {
      loadConfig({ REGISTRY_TOKENS: `x:root:${secret}` });
    } catch (err) {
      expect(String(err)).not.toContain(secret);
    }
  });
});

describe("single sign-on settings", () => {
  const oidc = {
    OIDC_ISSUER: "https://idp.example.com/realms/acme",
    OIDC_CLIENT_ID: "tenant-registry",
    PUBLIC_URL: "https://registry.example.com",
    OIDC_ADMIN_VALUES: "Registry Admins, registry-admins",
  };
  it("reads them: redirect URI, scopes, role values, secure cookies and session timeouts", () => {
    const { sso } = loadConfig({ ...oidc, OIDC_SCOPES: "groups offline_access", SESSION_IDLE_MINUTES: "0.5" });
    expect(sso.oidc).toMatchObject({
      redirectUri: "https://registry.example.com/v1/auth/callback",
      scopes: ["openid", "email", "profile", "groups", "offline_access"],
      adminValues: ["Registry Admins", "registry-admins"],
      auditorValues: [],
      roleClaim: "groups",
      clientSecret: undefined,
    });
    expect(sso).toMatchObject({
      publicOrigin: "https://registry.example.com",
      secureCookies: true,
      sessionIdleMs: 30_000,
      sessionMaxMs: 12 * 3_600_000,
    });
    expect(loadConfig({}).sso.oidc).toBeNull();
  });
  it("refuses settings that do not fit together, naming the variable", () => {
    const { PUBLIC_URL: _p, ...noPublicUrl } = oidc;
    expect(() => loadConfig(noPublicUrl)).toThrow(/OIDC_ISSUER is set but PUBLIC_URL is not/);
    const { OIDC_CLIENT_ID: _c, ...noClient } = oidc;
    expect(() => loadConfig(noClient)).toThrow(/OIDC_CLIENT_ID/);
    expect(() => loadConfig({ ...oidc, OIDC_ADMIN_VALUES: "" })).toThrow(/OIDC_ADMIN_VALUES nor OIDC_AUDITOR_VALUES/);
    expect(() => loadConfig({ OIDC_CLIENT_SECRET: "s3cret-value" })).toThrow(/OIDC_CLIENT_SECRET is set but OIDC_ISSUER is not/);
    expect(() => loadConfig({ ...oidc, OIDC_ISSUER: "http://idp.example.com" })).toThrow(/OIDC_ISSUER=.*https:\/\//);
    expect(() => loadConfig({ ...oidc, SESSION_MAX_HOURS: "0" })).toThrow(/SESSION_MAX_HOURS/);
    expect(() => loadConfig({ ...oidc, OIDC_CLIENT_SECRET: "x", PUBLIC_URL: "nope" })).toThrow(/PUBLIC_URL/);
    // A rejected secret is named, never shown.
    expect(() => loadConfig({ ...oidc, OIDC_CLIENT_SECRET: "s".repeat(2001) })).toThrow(/OIDC_CLIENT_SECRET="\(hidden\)"/);
  });
});
