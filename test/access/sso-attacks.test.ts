import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";
import { setCookieValue } from "../helpers/oidc-provider.js";

const PUBLIC_URL = "http://registry.test";
type Keys = Awaited<ReturnType<typeof generateKeyPair>>;

/**
 * A small hostile issuer (discovery, JWKS, a token endpoint) whose ID
 * tokens the test shapes: the attacks on ID-token validation, not the
 * end-to-end flow (sso.test.ts drives a real provider for that).
 */
async function startHostileIssuer() {
  const good: Keys = await generateKeyPair("RS256");
  const rogue: Keys = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(good.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  let next: (nonce: string) => Promise<string> = async () => "";
  let nonce = "";
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", issuer);
    const json = (body: unknown) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === "/.well-known/openid-configuration") {
      return json({
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ["code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        token_endpoint_auth_methods_supported: ["client_secret_basic"],
      });
    }
    if (url.pathname === "/jwks") return json({ keys: [jwk] });
    if (url.pathname === "/token") {
      req.resume();
      req.on(
        "end",
        () => void next(nonce).then((id_token) => json({ access_token: "at", token_type: "Bearer", expires_in: 60, id_token })),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sign = (claims: JWTPayload, key = good.privateKey) =>
    new SignJWT({ email: "mallory@example.com", groups: ["registry-admins"], ...claims })
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .sign(key);
  const now = () => Math.floor(Date.now() / 1000);
  const base = (n: string): JWTPayload => ({ iss: issuer, aud: "tenant-registry", sub: "mallory", nonce: n, iat: now(), exp: now() + 300 });
  return {
    issuer,
    rogue,
    sign,
    base,
    now,
    /** The next ID token the token endpoint gives, made from the nonce of the sign-in. */
    answer(make: (nonce: string) => Promise<string>) {
      next = make;
    },
    setNonce(n: string) {
      nonce = n;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.each(ENGINES)("ID tokens that must not sign anyone in (%s)", (engine) => {
  let hostile: Awaited<ReturnType<typeof startHostileIssuer>>;
  let t: TestApp;
  beforeAll(async () => {
    hostile = await startHostileIssuer();
    t = await openTestApp(engine, undefined, {
      OIDC_ISSUER: hostile.issuer,
      OIDC_CLIENT_ID: "tenant-registry",
      OIDC_CLIENT_SECRET: "a-client-secret",
      PUBLIC_URL,
      OIDC_ADMIN_VALUES: "registry-admins",
    });
  });
  afterAll(async () => {
    await t?.close();
    await hostile?.close();
  });

  /** A sign-in whose token endpoint answers `make(nonce)`: the callback's response. */
  const attempt = async (make: (nonce: string) => Promise<string>) => {
    const login = await t.app.inject({ url: "/v1/auth/login?return_to=/console/" });
    expect(login.statusCode).toBe(302);
    const authorize = new URL(String(login.headers.location));
    expect(authorize.searchParams.get("code_challenge_method")).toBe("S256");
    hostile.setNonce(authorize.searchParams.get("nonce") ?? "");
    hostile.answer(make);
    const state = authorize.searchParams.get("state") ?? "";
    return t.app.inject({
      url: `/v1/auth/callback?code=c0de&state=${encodeURIComponent(state)}`,
      headers: { cookie: `tr_login=${setCookieValue(login, "tr_login")}` },
    });
  };

  it("a well-formed token signs in (so each refusal below is the attack's doing)", async () => {
    const res = await attempt((n) => hostile.sign(hostile.base(n)));
    expect(res.statusCode).toBe(302);
    expect(setCookieValue(res, "tr_session")).toBeTruthy();
  });

  const attacks: [string, (nonce: string) => Promise<string>][] = [
    ["forged (signed by a key not in the JWKS)", (n) => hostile.sign(hostile.base(n), hostile.rogue.privateKey)],
    ["expired", (n) => hostile.sign({ ...hostile.base(n), iat: hostile.now() - 7200, exp: hostile.now() - 3600 })],
    ["for another audience", (n) => hostile.sign({ ...hostile.base(n), aud: "another-app" })],
    ["from another issuer", (n) => hostile.sign({ ...hostile.base(n), iss: "https://evil.example" })],
    ["without the nonce", (n) => hostile.sign({ ...hostile.base(n), nonce: undefined })],
    ["with another sign-in's nonce", (n) => hostile.sign({ ...hostile.base(n), nonce: `${n}x` })],
  ];
  it.each(attacks)("an ID token %s is refused with a page and no session", async (_name, make) => {
    const sessions = (await t.call("admin", "GET", "/v1/sessions")).json().sessions.length;
    const res = await attempt(make);
    expect(res.statusCode).toBe(400);
    expect(res.headers["content-type"]).toMatch(/^text\/html/);
    expect(res.body).toMatch(/could not be validated/);
    expect(setCookieValue(res, "tr_session") ?? "").toBe("");
    expect((await t.call("admin", "GET", "/v1/sessions")).json().sessions.length).toBe(sessions);
  });
});
