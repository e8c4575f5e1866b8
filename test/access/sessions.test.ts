import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "../helpers/app.js";
import { ENGINES, openTestDb, type TestDb } from "../helpers/db.js";
import { setCookieValue, startTestIdp, type TestIdp } from "../helpers/oidc-provider.js";

const PUBLIC_URL = "http://registry.test";

/** Signs `account` in through `t` and the provider: the session cookie's value. */
async function signIn(t: TestApp, idp: TestIdp, account: string): Promise<string> {
  const login = await t.app.inject({ url: "/v1/auth/login?return_to=/console/" });
  const back = await idp.login(String(login.headers.location), account);
  const res = await t.app.inject({
    url: back.pathname + back.search,
    headers: { cookie: `tr_login=${setCookieValue(login, "tr_login")}` },
  });
  expect(res.statusCode).toBe(302);
  return setCookieValue(res, "tr_session") as string;
}
const me = (t: TestApp, session: string) => t.app.inject({ url: "/v1/me", headers: { cookie: `tr_session=${session}` } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(ENGINES)("session timeouts (%s)", (engine) => {
  let idp: TestIdp;
  let t: TestApp;
  beforeAll(async () => {
    idp = await startTestIdp({ redirectUris: [`${PUBLIC_URL}/v1/auth/callback`] });
    // Idle 6 s, absolute 9 s: small enough to wait for.
    t = await openTestApp(engine, undefined, {
      ...idp.env(PUBLIC_URL, "public"),
      SESSION_IDLE_MINUTES: "0.1",
      SESSION_MAX_HOURS: "0.0025",
    });
  });
  afterAll(async () => {
    await t?.close();
    await idp?.close();
  });

  it("a public client signs in; a session left unused past the idle timeout ends", async () => {
    const s = await signIn(t, idp, "bob");
    expect((await me(t, s)).statusCode).toBe(200);
    await sleep(7_000);
    expect((await me(t, s)).statusCode).toBe(401);
  });

  it("a session in use ends at its absolute lifetime", async () => {
    const s = await signIn(t, idp, "alice");
    const start = Date.now();
    await expect.poll(async () => (await me(t, s)).statusCode, { timeout: 15_000, interval: 1_000 }).toBe(401);
    // Used every second (well within the idle timeout): it was the absolute end, 9 s after the start.
    expect(Date.now() - start).toBeGreaterThan(6_500);
  });
});

/**
 * Two instances on one PostgreSQL database, as behind a load balancer:
 * ending a session or disabling a person through one must stop the
 * session on the other within about a second.
 */
describe.runIf(process.env.TEST_DATABASE_URL)("sessions across two instances on PostgreSQL", () => {
  let idp: TestIdp;
  let store: TestDb;
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    idp = await startTestIdp({ redirectUris: [`${PUBLIC_URL}/v1/auth/callback`] });
    store = await openTestDb("postgres");
    a = await openTestApp("postgres", store, idp.env(PUBLIC_URL));
    b = await openTestApp("postgres", { ...store, db: await store.connect() }, idp.env(PUBLIC_URL));
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await store?.close();
    await idp?.close();
  });

  /** Milliseconds until `t` refuses the session; fails after 2 s. */
  const refusedWithin = async (t: TestApp, session: string, from: number) => {
    await expect.poll(async () => (await me(t, session)).statusCode, { timeout: 2_000, interval: 20 }).toBe(401);
    return performance.now() - from;
  };

  it("a session ended through B is refused on A within about a second", async () => {
    const s = await signIn(a, idp, "bob");
    expect((await me(a, s)).statusCode).toBe(200);
    expect((await me(b, s)).statusCode).toBe(200);
    const id = ((await b.call("admin", "GET", "/v1/sessions")).json().sessions as { id: string; person: { email: string } }[]).find(
      (x) => x.person.email === "bob@example.com",
    )?.id;
    const t0 = performance.now();
    expect((await b.call("admin", "DELETE", `/v1/sessions/${id}`)).statusCode).toBe(204);
    expect(await refusedWithin(a, s, t0)).toBeLessThan(2_000);
  });

  it("a person disabled through B is refused on A within about a second", async () => {
    const s = await signIn(a, idp, "alice");
    expect((await me(a, s)).statusCode).toBe(200);
    const person = ((await b.call("admin", "GET", "/v1/people")).json().people as { id: string; email: string }[]).find(
      (p) => p.email === "alice@example.com",
    );
    const t0 = performance.now();
    expect((await b.call("admin", "POST", `/v1/people/${person?.id}/disable`)).statusCode).toBe(200);
    expect(await refusedWithin(a, s, t0)).toBeLessThan(2_000);
  });
});
