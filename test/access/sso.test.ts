import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";
import { setCookieValue, startTestIdp, type TestIdp } from "../helpers/oidc-provider.js";

const PUBLIC_URL = "http://registry.test";
const ORIGIN = { origin: PUBLIC_URL };

describe.each(ENGINES)("single sign-on through a real OpenID Provider (%s)", (engine) => {
  let idp: TestIdp;
  let t: TestApp;
  beforeAll(async () => {
    idp = await startTestIdp({ redirectUris: [`${PUBLIC_URL}/v1/auth/callback`] });
    t = await openTestApp(engine, undefined, idp.env(PUBLIC_URL));
  });
  afterAll(async () => {
    await t?.close();
    await idp?.close();
  });

  /** /v1/auth/login, the provider's forms as `account`, and the callback: the callback's answer. */
  const signIn = async (account: string, returnTo = "/console/tenants") => {
    const login = await t.app.inject({ url: `/v1/auth/login?return_to=${encodeURIComponent(returnTo)}` });
    expect(login.statusCode).toBe(302);
    const bound = setCookieValue(login, "tr_login");
    const back = await idp.login(String(login.headers.location), account);
    expect(back.origin + back.pathname).toBe(`${PUBLIC_URL}/v1/auth/callback`);
    const res = await t.app.inject({ url: back.pathname + back.search, headers: { cookie: `tr_login=${bound}` } });
    return { res, session: setCookieValue(res, "tr_session"), callback: back.pathname + back.search, bound };
  };
  const asPerson = (session: string, method: string, url: string, headers: Record<string, string> = {}, body?: unknown) =>
    t.app.inject({
      method: method as "GET",
      url,
      headers: { cookie: `tr_session=${session}`, ...headers },
      ...(body !== undefined ? { payload: body as object } : {}),
    });

  it("says single sign-on is on", async () => {
    expect((await t.app.inject({ url: "/v1/auth/providers" })).json()).toEqual({ oidc: true });
  });

  it("an admin signs in: a session cookie, the console, and the audit trail names them by email", async () => {
    const { res, session } = await signIn("alice");
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe("/console/tenants");
    const cookie = ([] as string[]).concat(res.headers["set-cookie"] ?? []).find((c) => c.startsWith("tr_session="));
    expect(cookie).toMatch(/; Path=\/; HttpOnly; SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure/);
    expect(session).toBeTruthy();
    const me = await asPerson(session as string, "GET", "/v1/me");
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ kind: "person", name: "alice@example.com", email: "alice@example.com", role: "admin" });
    expect(Date.parse(me.json().expires_at)).toBeGreaterThan(Date.now());
    // A change by the person: actor_id is their email, X-Actor-Id ignored.
    const created = await asPerson(
      session as string,
      "POST",
      "/v1/tenants",
      { ...ORIGIN, "x-actor-id": "someone-else" },
      {
        slug: `sso-${Date.now().toString(36)}`,
        name: "By Alice",
      },
    );
    expect(created.statusCode).toBe(201);
    const audit = await t.call("admin", "GET", `/v1/audit?tenant_id=${created.json().id}`);
    expect(audit.json().events[0]).toMatchObject({ action: "tenant.created", actor_id: "alice@example.com" });
    expect(audit.json().events[0].metadata.principal).toBeUndefined();
    const started = await t.call("admin", "GET", "/v1/audit?action=session.started");
    expect(started.json().events.some((e: { actor_id: string }) => e.actor_id === "alice@example.com")).toBe(true);
  });
});
