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

  it("an auditor signs in as auditor; someone whose groups give no role gets the 403 page and no session", async () => {
    const bob = await signIn("bob");
    expect(bob.res.statusCode).toBe(302);
    expect((await asPerson(bob.session as string, "GET", "/v1/me")).json()).toMatchObject({ role: "auditor", name: "bob@example.com" });
    const denied = await asPerson(bob.session as string, "POST", "/v1/tenants", ORIGIN, { slug: "x-by-bob", name: "No" });
    expect(denied.statusCode).toBe(403);
    const carol = await signIn("carol");
    expect(carol.res.statusCode).toBe(403);
    expect(carol.res.headers["content-type"]).toMatch(/^text\/html/);
    expect(carol.res.body).toMatch(/have no role in tenant-registry/);
    expect(carol.session).toBeUndefined();
    const people = (await t.call("auditor", "GET", "/v1/people")).json().people as { email: string }[];
    expect(people.map((p) => p.email)).not.toContain("carol@example.com");
  });

  it("a used, missing or foreign state is refused with a page, and starts nothing", async () => {
    const first = await signIn("alice");
    expect(first.res.statusCode).toBe(302);
    const replay = await t.app.inject({ url: first.callback, headers: { cookie: `tr_login=${first.bound}` } });
    expect(replay.statusCode).toBe(400);
    expect(replay.body).toMatch(/unknown, expired or already used/);
    expect(setCookieValue(replay, "tr_session") ?? "").toBe("");
    const missing = await t.app.inject({ url: "/v1/auth/callback?code=abc" });
    expect(missing.statusCode).toBe(400);
    expect(missing.body).toMatch(/no state/);
    // A callback URL carried to another browser (login CSRF): the state is not bound to it.
    const login = await t.app.inject({ url: "/v1/auth/login" });
    const back = await idp.login(String(login.headers.location), "alice");
    const foreign = await t.app.inject({ url: back.pathname + back.search });
    expect(foreign.statusCode).toBe(400);
    expect(foreign.body).toMatch(/not started in this browser/);
  });

  it("return_to outside /console/ lands on /console/", async () => {
    for (const bad of [
      "//evil.example",
      "https://evil.example",
      "/console/../v1",
      "/console/%2e%2e/v1/tenants",
      "/console\\..\\v1",
      "/v1/me",
    ]) {
      const login = await t.app.inject({ url: `/v1/auth/login?return_to=${encodeURIComponent(bad)}` });
      const bound = setCookieValue(login, "tr_login");
      const back = await idp.login(String(login.headers.location), "bob");
      const res = await t.app.inject({ url: back.pathname + back.search, headers: { cookie: `tr_login=${bound}` } });
      expect(res.headers.location, bad).toBe("/console/");
    }
  });

  it("a cross-site change carrying the cookie is refused and changes nothing; Authorization wins over the cookie", async () => {
    const { session } = await signIn("alice");
    const s = session as string;
    const slug = `xsite-${Date.now().toString(36)}`;
    const crossSite: Record<string, string>[] = [{ origin: "https://evil.example" }, {}, { "sec-fetch-site": "cross-site" }];
    for (const headers of crossSite) {
      const res = await asPerson(s, "POST", "/v1/tenants", headers, { slug, name: "Forged" });
      expect(res.statusCode, JSON.stringify(headers)).toBe(403);
    }
    expect((await t.call("admin", "GET", `/v1/tenants/by-slug/${slug}`)).statusCode).toBe(404);
    const same = await asPerson(s, "POST", "/v1/tenants", { "sec-fetch-site": "same-origin" }, { slug, name: "Mine" });
    expect(same.statusCode).toBe(201);
    const wrongBearer = await asPerson(s, "GET", "/v1/me", { authorization: "Bearer not-a-token-at-all" });
    expect(wrongBearer.statusCode).toBe(401);
    const auditorBearer = await asPerson(s, "GET", "/v1/me", { authorization: `Bearer ${t.tokens.auditor}` });
    expect(auditorBearer.json()).toMatchObject({ kind: "bootstrap", name: "compliance" });
  });

  it("logout ends the session and clears the cookie; 204 also without one", async () => {
    const { session } = await signIn("bob");
    const s = session as string;
    const out = await asPerson(s, "POST", "/v1/auth/logout", ORIGIN);
    expect(out.statusCode).toBe(204);
    expect(String(out.headers["set-cookie"])).toMatch(/tr_session=; .*Max-Age=0/);
    expect((await asPerson(s, "GET", "/v1/me")).statusCode).toBe(401);
    expect((await t.app.inject({ method: "POST", url: "/v1/auth/logout" })).statusCode).toBe(204);
    const ended = (await t.call("admin", "GET", "/v1/audit?action=session.ended")).json().events;
    expect(ended[0]).toMatchObject({ actor_id: "bob@example.com", action: "session.ended" });
  });

  it("admins list and end sessions, and disable and enable people; a disabled person cannot sign in", async () => {
    const { session } = await signIn("alice");
    const s = session as string;
    const me = (await asPerson(s, "GET", "/v1/me")).json();
    const sessions = (await t.call("auditor", "GET", "/v1/sessions")).json().sessions as { id: string; person: { email: string } }[];
    const mine = sessions.filter((x) => x.person.email === "alice@example.com");
    expect(mine.length).toBeGreaterThan(0);
    expect((await t.call("auditor", "DELETE", `/v1/sessions/${mine[0]?.id}`)).statusCode).toBe(403);
    expect((await t.call("admin", "DELETE", "/v1/sessions/00000000-0000-4000-8000-000000000000")).statusCode).toBe(404);

    const again = await signIn("alice");
    const person = ((await t.call("admin", "GET", "/v1/people")).json().people as { id: string; email: string }[]).find(
      (p) => p.email === "alice@example.com",
    );
    const disabled = await t.call("admin", "POST", `/v1/people/${person?.id}/disable`);
    expect(disabled.statusCode).toBe(200);
    expect(disabled.json()).toMatchObject({ email: "alice@example.com", role: "admin", disabled: true });
    expect((await asPerson(s, "GET", "/v1/me")).statusCode).toBe(401);
    expect((await asPerson(again.session as string, "GET", "/v1/me")).statusCode).toBe(401);
    const count = async () => (await t.call("admin", "GET", "/v1/audit?action=person.disabled")).json().events.length;
    const before = await count();
    expect((await t.call("admin", "POST", `/v1/people/${person?.id}/disable`)).statusCode).toBe(200);
    expect(await count()).toBe(before);
    const refused = await signIn("alice");
    expect(refused.res.statusCode).toBe(403);
    expect(refused.res.body).toMatch(/access to tenant-registry is disabled/);
    expect(refused.session).toBeUndefined();
    expect((await t.call("admin", "POST", `/v1/people/${person?.id}/enable`)).json()).toMatchObject({ disabled: false });
    const back = await signIn("alice");
    expect(back.res.statusCode).toBe(302);
    const last = (await asPerson(back.session as string, "GET", "/v1/me")).json();
    expect(last).toMatchObject({ kind: "person", email: me.email });
    const id = ((await t.call("admin", "GET", "/v1/sessions")).json().sessions as { id: string; person: { email: string } }[]).find(
      (x) => x.person.email === "alice@example.com",
    )?.id;
    expect((await t.call("admin", "DELETE", `/v1/sessions/${id}`)).statusCode).toBe(204);
    expect((await t.call("admin", "DELETE", `/v1/sessions/${id}`)).statusCode).toBe(204);
    expect((await asPerson(back.session as string, "GET", "/v1/me")).statusCode).toBe(401);
  });
});
