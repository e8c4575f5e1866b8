import { createServer } from "node:net";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "../helpers/app.js";
import { setCookieValue, startTestIdp, type TestIdp } from "../helpers/oidc-provider.js";
import { CHROMIUM, ensureConsoleBuilt, expectNoSeriousA11yViolations, HAVE_CHROMIUM, launch } from "./browser.js";

/**
 * The Access screen and single sign-on in Chromium: a registry on a loopback
 * port whose PUBLIC_URL is that port, signing people in through a real
 * OpenID Provider (oidc-provider, its own login form). Tokens, people and
 * sessions are changed through the console and checked through the API.
 */
const SLOW = 180_000;

if (!HAVE_CHROMIUM) console.warn(`console access tests skipped: no Chromium at ${CHROMIUM}`);

/** A free loopback port: PUBLIC_URL and the provider's redirect URI must name it before the registry starts. */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

describe.skipIf(!HAVE_CHROMIUM)("the console's Access screen and SSO sign-in", () => {
  let t: TestApp;
  let idp: TestIdp;
  let base: string;
  let browser: Browser;

  const open = async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    return { context, page };
  };
  const signInWithToken = async (page: Page, token: string) => {
    await page.goto(`${base}/console/`);
    await page.getByLabel("Token").fill(token);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("heading", { level: 1, name: "Tenants" }).waitFor();
  };
  /** A person signs in over plain HTTP (the provider's forms posted as a browser would): their session cookie. */
  const sessionOf = async (account: string): Promise<string> => {
    const login = await t.app.inject({ url: "/v1/auth/login?return_to=/console/" });
    const bound = setCookieValue(login, "tr_login");
    const back = await idp.login(String(login.headers.location), account);
    const res = await t.app.inject({ url: back.pathname + back.search, headers: { cookie: `tr_login=${bound}` } });
    const session = setCookieValue(res, "tr_session");
    if (!session) throw new Error(`no session for ${account}: ${res.statusCode}`);
    return session;
  };
  const meWith = (cookie: string) => t.app.inject({ url: "/v1/me", headers: { cookie: `tr_session=${cookie}` } });
  const openAccess = async (page: Page) => {
    await page.getByRole("link", { name: "Access" }).click();
    await page.getByRole("heading", { level: 1, name: "Access" }).waitFor();
  };

  beforeAll(async () => {
    ensureConsoleBuilt();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    idp = await startTestIdp({ redirectUris: [`${base}/v1/auth/callback`] });
    t = await openTestApp("pglite", undefined, idp.env(base));
    await t.app.listen({ host: "127.0.0.1", port });
    browser = await launch();
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await idp?.close();
  });

  it(
    "creates a managed token shown once, rotates it and revokes it; a refused create shows the problem",
    async () => {
      const { context, page } = await open();
      await signInWithToken(page, t.tokens.admin);
      await openAccess(page);
      const tokens = page.getByRole("region", { name: /Tokens/ });
      await tokens.getByRole("button", { name: "New token" }).click();
      const form = page.getByRole("form", { name: "New token" });
      expect(await page.evaluate<string | undefined>("document.activeElement?.id")).toBe("token-name");
      await form.getByLabel("Name").fill("analytics");
      await form.getByLabel("Role").selectOption("service");
      await form.getByLabel("Expires").fill("2099-06-01T12:00");
      await form.getByRole("button", { name: "Create" }).click();
      const shown = page.getByLabel("New token", { exact: true });
      await shown.waitFor();
      const first = await shown.inputValue();
      expect(first).toMatch(/^rt_[A-Za-z0-9]{32,}$/);
      expect(await shown.getAttribute("readonly")).not.toBeNull();
      await tokens.getByRole("button", { name: "Copy" }).waitFor();
      const asToken = (secret: string) => t.app.inject({ url: "/v1/me", headers: { authorization: `Bearer ${secret}` } });
      expect((await asToken(first)).json()).toMatchObject({ kind: "token", name: "analytics", role: "service" });
      const listed = (await t.call("admin", "GET", "/v1/tokens")).json().tokens;
      expect(listed.find((x: { name: string }) => x.name === "analytics")?.expires_at).toBe(new Date(2099, 5, 1, 12).toISOString());
      await expectNoSeriousA11yViolations(page, "access, a new token");

      // Rotate with the default grace: a new secret shown once, the old one still works for now.
      await tokens.getByRole("button", { name: "Done" }).click();
      await tokens.getByRole("button", { name: "Rotate analytics" }).click();
      const dialog = page.getByRole("dialog");
      await dialog.getByLabel("Old token keeps working for").waitFor();
      await dialog.getByRole("button", { name: "Confirm" }).click();
      await shown.waitFor();
      const second = await shown.inputValue();
      expect(second).not.toBe(first);
      expect((await asToken(second)).statusCode).toBe(200);
      expect((await asToken(first)).statusCode).toBe(200);
      await tokens.getByText("rotated").waitFor();

      // Revoke the new one: it stops working.
      const live = tokens.getByRole("row").filter({ hasText: "live" });
      await live.getByRole("button", { name: "Revoke analytics" }).click();
      await dialog.getByRole("button", { name: "Confirm" }).click();
      await tokens.getByText("revoked").waitFor();
      await expect.poll(async () => (await asToken(second)).statusCode).toBe(401);

      // A name the registry refuses (a bootstrap principal's): the problem's detail shows.
      await tokens.getByRole("button", { name: "New token" }).click();
      await form.getByLabel("Name").fill("admin");
      await form.getByRole("button", { name: "Create" }).click();
      const alert = form.getByRole("alert");
      await alert.waitFor();
      expect(await alert.textContent()).toMatch(/admin/);
      await context.close();
    },
    SLOW,
  );

  it(
    "lists people and their sessions: Disable ends a person's sessions, Enable lets them back, End session ends one",
    async () => {
      const bob = await sessionOf("bob");
      const { context, page } = await open();
      await signInWithToken(page, t.tokens.admin);
      await openAccess(page);
      const people = page.getByRole("region", { name: /People/ });
      const sessions = page.getByRole("region", { name: /Sessions/ });
      await sessions.getByRole("button", { name: "End session bob@example.com" }).first().waitFor();

      await people.getByRole("button", { name: "Disable bob@example.com" }).click();
      await people.getByRole("button", { name: "Enable bob@example.com" }).waitFor();
      await expect.poll(async () => (await meWith(bob)).statusCode).toBe(401);
      await expect.poll(() => sessions.getByRole("button", { name: /End session bob/ }).count()).toBe(0);
      await people.getByRole("button", { name: "Enable bob@example.com" }).click();
      await people.getByRole("button", { name: "Disable bob@example.com" }).waitFor();

      const again = await sessionOf("bob");
      expect((await meWith(again)).statusCode).toBe(200);
      await page.reload();
      await sessions.getByRole("button", { name: "End session bob@example.com" }).click();
      await expect.poll(async () => (await meWith(again)).statusCode).toBe(401);
      await expect.poll(() => sessions.getByRole("button", { name: /End session bob/ }).count()).toBe(0);
      await expectNoSeriousA11yViolations(page, "access");
      await context.close();
    },
    SLOW,
  );

  it(
    "an auditor sees tokens, people and sessions and no button that changes anything",
    async () => {
      await t.call("admin", "POST", "/v1/tokens", { name: "for-auditor-view", role: "service" });
      await sessionOf("bob");
      const { context, page } = await open();
      await signInWithToken(page, t.tokens.auditor);
      await openAccess(page);
      await page.getByRole("cell", { name: "for-auditor-view" }).waitFor();
      await page
        .getByRole("region", { name: /People/ })
        .getByRole("cell", { name: "bob@example.com" })
        .waitFor();
      await page
        .getByRole("region", { name: /Sessions/ })
        .getByRole("cell", { name: "bob@example.com" })
        .first()
        .waitFor();
      expect(await page.getByRole("button").allTextContents()).toEqual(["Sign out"]);
      await expectNoSeriousA11yViolations(page, "access (auditor)");
      await context.close();
    },
    SLOW,
  );

  it(
    "signs in with SSO through the provider's own login form, keeps no token in the page, and Sign out ends the session",
    async () => {
      const { context, page } = await open();
      await page.goto(`${base}/console/audit`);
      await page.getByRole("button", { name: "Sign in with SSO" }).click();
      // The provider's pages: its login form, then its consent page.
      await page.waitForURL((url) => url.origin === idp.issuer);
      await page.locator('input[name="login"]').fill("alice");
      await page.locator('input[name="password"]').fill("any password");
      await page.locator('button[type="submit"]').click();
      await page
        .locator('button[type="submit"]')
        .filter({ hasText: /continue/i })
        .click();
      // Back in the console, on the page it started from, signed in as the person.
      await page.getByRole("heading", { level: 1, name: "Audit" }).waitFor();
      expect(new URL(page.url()).pathname).toBe("/console/audit");
      await page.getByRole("banner").getByText("alice@example.com").waitFor();
      await page.getByRole("link", { name: "Access" }).waitFor();
      expect(await page.evaluate<number>("sessionStorage.length + localStorage.length")).toBe(0);
      const cookie = (await context.cookies()).find((c) => c.name === "tr_session");
      expect(cookie?.httpOnly).toBe(true);
      expect(await page.evaluate<string>("document.cookie")).not.toContain("tr_session");
      expect((await meWith(cookie?.value ?? "")).json()).toMatchObject({ kind: "person", email: "alice@example.com", role: "admin" });

      // A change made through the console is the person's: the cookie carries it (same origin).
      await page.getByRole("link", { name: "Tenants" }).click();
      await page.getByRole("button", { name: "New tenant" }).click();
      const slug = `sso-${Date.now().toString(36)}`;
      const form = page.getByRole("form", { name: "New tenant" });
      await form.getByLabel("Slug").fill(slug);
      await form.getByLabel("Name").fill("By Alice");
      await form.getByRole("button", { name: "Create" }).click();
      await page.getByRole("heading", { level: 1, name: "By Alice" }).waitFor();
      const created = (await t.call("admin", "GET", `/v1/tenants/by-slug/${slug}`)).json();
      const trail = (await t.call("admin", "GET", `/v1/audit?tenant_id=${created.id}`)).json().events;
      expect(trail[0]).toMatchObject({ action: "tenant.created", actor_id: "alice@example.com" });

      // A reload keeps the tab signed in (by the cookie), still with no token in the page.
      await page.reload();
      await page.getByRole("heading", { level: 1, name: "By Alice" }).waitFor();
      expect(await page.evaluate<number>("sessionStorage.length + localStorage.length")).toBe(0);

      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByRole("button", { name: "Sign in with SSO" }).waitFor();
      await page.getByLabel("Token").waitFor();
      await expectNoSeriousA11yViolations(page, "sign-in with SSO");
      // The server session is over: the old cookie no longer works.
      expect((await meWith(cookie?.value ?? "")).statusCode).toBe(401);
      await context.close();
    },
    SLOW,
  );
});
