import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import Fastify from "fastify";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSOLE_CSP, consoleRoutes } from "../../src/http/console.js";
import type { App } from "../../src/http/types.js";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import {
  brokenWords,
  bundleSizes,
  CHROMIUM,
  CONSOLE_DIST,
  ensureConsoleBuilt,
  expectNoHorizontalScroll,
  expectNoSeriousA11yViolations,
  HAVE_CHROMIUM,
  launch,
  lineCounts,
} from "./browser.js";

/** One date format on every screen: local time as "2026-12-02 15:04:05". */
const DATE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;

/**
 * The console as people use it: Debian's Chromium driven by Playwright
 * against a registry listening on a random port, found by roles and labels
 * (SPEC's accessible names). Screenshots go to docs/console/ only with
 * UPDATE_SCREENSHOTS=1.
 */
const SHOTS = process.env.UPDATE_SCREENSHOTS === "1" ? fileURLToPath(new URL("../../docs/console/", import.meta.url)) : null;
const SLOW = 180_000;

if (!HAVE_CHROMIUM) {
  console.warn(`console browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
}

describe.skipIf(!HAVE_CHROMIUM)("the admin console in Chromium", () => {
  let t: TestApp;
  let base: string;
  let browser: Browser;
  let admin: { context: BrowserContext; page: Page };
  const cspViolations: string[] = [];

  const open = async (viewport = { width: 1280, height: 800 }) => {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    page.on("console", (m) => {
      if (m.type() === "error" && /Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    return { context, page };
  };
  const signIn = async (page: Page, token: string) => {
    await page.goto(`${base}/console/`);
    await page.getByLabel("Token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
  };
  /** The plaintext of a new key is masked: even a throwaway test key does not belong in the repository. */
  const shot = async (page: Page, name: string, fullPage = false) => {
    if (SHOTS) await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage, mask: [page.getByLabel("New key", { exact: true })] });
  };
  const createTenant = async (name: string) => {
    const res = await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug("ui"), name });
    expect(res.statusCode).toBe(201);
    return res.json() as { id: string; slug: string; name: string };
  };

  beforeAll(async () => {
    ensureConsoleBuilt();
    if (SHOTS) mkdirSync(SHOTS, { recursive: true });
    t = await openTestApp("pglite");
    base = (await t.app.listen({ host: "127.0.0.1", port: 0 })).replace("localhost", "127.0.0.1");
    browser = await launch();
    admin = await open();
    await signIn(admin.page, t.tokens.admin);
    await admin.page.getByRole("heading", { level: 1, name: "Tenants" }).waitFor();
  }, SLOW);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it(
    "signs in with each role: admin and auditor in, a service token refused, a wrong token shows the problem",
    async () => {
      await admin.page.getByRole("heading", { level: 1, name: "Tenants" }).waitFor();
      await expect(admin.page.getByText("(admin)")).toBeTruthy();

      const { context, page } = await open();
      await signIn(page, t.tokens.service);
      await page.getByText("service tokens are for products").waitFor();
      expect(await page.evaluate<number>("sessionStorage.length")).toBe(0);

      await page.getByLabel("Token").fill("not-a-token");
      await page.getByRole("button", { name: "Sign in" }).click();
      const alert = page.getByRole("alert");
      await alert.getByText("the bearer token is not valid").waitFor();
      expect(await alert.textContent()).toMatch(/request id: \S+/);
      await expectNoSeriousA11yViolations(page, "sign-in");
      await shot(page, "sign-in");

      await signIn(page, t.tokens.auditor);
      await page.getByRole("heading", { level: 1, name: "Tenants" }).waitFor();
      await page.getByText("(auditor)").waitFor();
      // The token is in this tab's sessionStorage, never in the URL, a cookie or localStorage.
      expect(page.url()).not.toContain(t.tokens.auditor);
      expect(await context.cookies()).toEqual([]);
      expect(await page.evaluate<number>("localStorage.length")).toBe(0);
      await page.reload();
      await page.getByRole("heading", { level: 1, name: "Tenants" }).waitFor();
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByLabel("Token").waitFor();
      expect(await page.evaluate<number>("sessionStorage.length")).toBe(0);

      // A saved token the registry no longer accepts: back at sign-in, told why, the token forgotten.
      await page.evaluate(`sessionStorage.setItem("tenant-registry.token", "a-token-since-rotated")`);
      await page.reload();
      await page.getByText("Signed out: the bearer token is not valid").waitFor();
      expect(await page.evaluate<number>("sessionStorage.length")).toBe(0);
      await context.close();
    },
    SLOW,
  );

  it(
    "creates a tenant, grants a product, issues a key shown once, revokes it, activates and cancels the tenant",
    async () => {
      const { page } = admin;
      const slug = uniqueSlug("new");
      await page.getByRole("link", { name: "Tenants" }).click();
      await page.getByRole("button", { name: "New tenant" }).click();
      const form = page.getByRole("form", { name: "New tenant" });
      await form.getByLabel("Slug").fill(slug);
      await form.getByLabel("Name").fill("Globex Console");
      await form.getByLabel("Plan").selectOption("growth");
      await form.getByRole("button", { name: "Create" }).click();

      await page.getByRole("heading", { level: 1, name: "Globex Console" }).waitFor();
      await expect.poll(() => page.getByLabel("Status", { exact: true }).textContent()).toBe("pending");
      const tenant = (await t.call("admin", "GET", `/v1/tenants/by-slug/${slug}`)).json();
      expect(tenant).toMatchObject({ name: "Globex Console", plan: "growth", status: "pending" });
      expect(page.url()).toBe(`${base}/console/tenants/${tenant.id}`);

      // Inline edit of a patchable field.
      await page.getByRole("button", { name: "Edit sales owner" }).click();
      await page.getByLabel("Sales owner").fill("dana");
      await page.getByRole("button", { name: "Save" }).click();
      await page.getByRole("button", { name: "Edit sales owner" }).waitFor();
      await expect.poll(async () => (await t.call("admin", "GET", `/v1/tenants/${tenant.id}`)).json().sales_owner).toBe("dana");

      // Grant, then revoke, a product.
      const entitlements = page.getByRole("region", { name: /Entitlements/ });
      await entitlements.getByLabel("Product").selectOption("analytics");
      await entitlements.getByRole("button", { name: "Grant" }).click();
      const row = entitlements.getByRole("row", { name: /analytics/ });
      await row.getByText("active").waitFor();
      await expect
        .poll(async () => (await t.call("admin", "GET", `/v1/entitlements?tenant_id=${tenant.id}`)).json().entitlements)
        .toEqual([expect.objectContaining({ product: "analytics", status: "active" })]);
      await expectNoSeriousA11yViolations(page, "tenant");
      // Times in the viewer's zone, UTC on hover.
      expect(await page.locator("time").first().getAttribute("title")).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);

      // A key: plaintext once, it verifies, it is gone after a reload, then revoked it is refused.
      const keys = page.getByRole("region", { name: /API keys/ });
      await keys.getByRole("button", { name: "New key" }).click();
      await keys.getByLabel("Name").fill("checkout");
      await keys.getByLabel("Product").selectOption("analytics");
      await keys.getByLabel("Scopes").fill("read, write");
      await keys.getByRole("button", { name: "Create" }).click();
      const plaintextField = page.getByLabel("New key", { exact: true });
      await plaintextField.waitFor();
      const plaintext = await plaintextField.inputValue();
      expect(plaintext).toMatch(/^bp_[A-Za-z0-9_-]{22}$/);
      expect(await plaintextField.getAttribute("readonly")).not.toBeNull();
      await keys.getByRole("button", { name: "Copy" }).waitFor();
      await shot(page, "tenant", true);
      const verify = async () =>
        (await t.call("service", "POST", "/v1/internal/api-keys/verify", { key: plaintext, product: "analytics", scope: "write" })).json();
      expect(await verify()).toMatchObject({ valid: true, tenant_id: tenant.id, scopes: ["read", "write"] });

      await page.reload();
      await page.getByRole("heading", { level: 1, name: "Globex Console" }).waitFor();
      await keys.getByRole("cell", { name: "checkout", exact: true }).waitFor();
      expect(await page.getByLabel("New key", { exact: true }).count()).toBe(0);
      expect(await page.content()).not.toContain(plaintext);

      await keys
        .getByRole("row", { name: /checkout/ })
        .getByRole("button", { name: "Revoke" })
        .click();
      const dialog = page.getByRole("dialog");
      await dialog.getByRole("button", { name: "Confirm" }).click();
      await keys.getByText("revoked").waitFor();
      expect(await verify()).toEqual({ valid: false, reason: "revoked" });

      // A second product, granted then revoked.
      await entitlements.getByLabel("Product").selectOption("billing");
      await entitlements.getByRole("button", { name: "Grant" }).click();
      const billing = entitlements.getByRole("row", { name: /billing/ });
      await billing.getByText("active").waitFor();
      await billing.getByRole("button", { name: "Revoke" }).click();
      await billing.getByText("cancelled").waitFor();

      // Lifecycle: Activate, then Cancel tenant through the in-page dialog.
      await page.getByRole("button", { name: "Activate" }).click();
      await expect.poll(() => page.getByLabel("Status", { exact: true }).textContent()).toBe("active");
      await page.getByRole("button", { name: "Cancel tenant" }).click();
      await dialog.waitFor();
      await expectNoSeriousA11yViolations(page, "cancel dialog");
      await dialog.getByRole("button", { name: "Confirm" }).click();
      await expect.poll(() => page.getByLabel("Status", { exact: true }).textContent()).toBe("cancelled");
      expect((await t.call("admin", "GET", `/v1/tenants/${tenant.id}`)).json().status).toBe("cancelled");
      expect(await page.getByRole("button", { name: "Cancel tenant" }).count()).toBe(0);

      // The tenant's own trail shows what just happened.
      const trail = page.getByRole("region", { name: "Audit trail" });
      for (const action of [
        "tenant.created",
        "entitlement.granted",
        "api_key.created",
        "api_key.revoked",
        "tenant.activated",
        "tenant.cancelled",
      ]) {
        await trail.getByRole("cell", { name: action, exact: true }).first().waitFor();
      }
    },
    SLOW,
  );

  it(
    "finds tenants by search and filters, and pages with Load more",
    async () => {
      const { page } = admin;
      const tag = uniqueSlug("find");
      // More than a page (50) of tenants, so that paging has something to do.
      while ((await t.call("admin", "GET", "/v1/tenants?limit=200")).json().tenants.length <= 55) {
        await createTenant("Filler");
      }
      for (let i = 0; i < 3; i++)
        await t.call("admin", "POST", "/v1/tenants", {
          slug: `${tag}-${i}`,
          name: `Findable ${tag} ${i}`,
          plan: i === 0 ? "enterprise" : "starter",
        });
      await page.getByRole("link", { name: "Tenants" }).click();
      await page.getByLabel("Search").fill(tag);
      await page.getByRole("link", { name: `Findable ${tag} 2` }).waitFor();
      await expect.poll(() => page.getByRole("link", { name: new RegExp(`Findable ${tag}`) }).count()).toBe(3);
      await page.getByLabel("Filter by plan").selectOption("enterprise");
      await expect.poll(() => page.getByRole("link", { name: new RegExp(`Findable ${tag}`) }).count()).toBe(1);
      await page.getByLabel("Filter by status").selectOption("active");
      await page.getByText("No tenants match.").waitFor();
      await page.getByLabel("Filter by status").selectOption("");
      await page.getByLabel("Filter by plan").selectOption("");
      await page.getByLabel("Search").fill("");
      await page.getByRole("button", { name: "Load more" }).click();
      await expect.poll(() => page.getByRole("table").getByRole("row").count()).toBeGreaterThan(51);
      await expectNoSeriousA11yViolations(page, "tenants");
      await shot(page, "tenants");
    },
    SLOW,
  );

  it(
    "filters the audit log as the fields change, and the live tail shows new events",
    async () => {
      const { page } = admin;
      const tenant = await createTenant("Audited");
      await t.call("admin", "POST", `/v1/tenants/${tenant.id}/activate`);
      await page.getByRole("link", { name: "Audit" }).click();
      await page.getByRole("heading", { level: 1, name: "Audit" }).waitFor();
      await page.getByLabel("Tenant", { exact: true }).fill(tenant.slug);
      const table = page.getByRole("table");
      // A header row and this tenant's two events, once the filter applies.
      await expect.poll(() => table.getByRole("row").count()).toBe(3);
      await table.getByRole("cell", { name: "tenant.activated", exact: true }).waitFor();
      await page.getByLabel("Action").fill("tenant.created");
      await expect.poll(() => table.getByRole("row").count()).toBe(2);
      await page.getByLabel("Actor").fill("nobody-at-all");
      await page.getByText("No events match.").waitFor();
      await page.getByLabel("Actor").fill("");
      await page.getByLabel("Action").fill("");
      await expect.poll(() => table.getByRole("row").count()).toBe(3);

      await page.getByLabel("Live").check();
      const posted = await t.call("service", "POST", "/v1/audit", {
        action: "support.ticket_opened",
        tenant_id: tenant.id,
        actor_id: "sam",
      });
      expect(posted.statusCode).toBe(201);
      await table.getByRole("cell", { name: "support.ticket_opened" }).waitFor({ timeout: 15_000 });
      expect(await table.getByRole("cell", { name: "support.ticket_opened" }).count()).toBe(1);
      await page.getByLabel("Live").uncheck();
      await expectNoSeriousA11yViolations(page, "audit");
      await shot(page, "audit");

      // An unknown slug says so, with the request id.
      await page.getByLabel("Tenant", { exact: true }).fill("no-such-tenant-here");
      await page.getByRole("alert").getByText('no tenant "no-such-tenant-here"').waitFor();
    },
    SLOW,
  );

  it(
    "shows catalog, webhooks and status, each without serious axe violations; deep links load",
    async () => {
      const { page } = admin;
      await page.getByRole("link", { name: "Catalog" }).click();
      await page.getByRole("cell", { name: "analytics", exact: true }).waitFor();
      await expectNoSeriousA11yViolations(page, "catalog");
      await shot(page, "catalog");

      await page.getByRole("link", { name: "Webhooks" }).click();
      await page.getByText("No webhook endpoints.").waitFor();
      await expectNoSeriousA11yViolations(page, "webhooks");

      await page.getByRole("link", { name: "Status" }).click();
      await page.getByText("ready", { exact: true }).waitFor();
      await page.getByText("HTTP requests served").waitFor();
      // The audit log: the newest checkpoint's size, root and time, and the verifier key, as the API serves them.
      await page.getByRole("heading", { level: 2, name: "Audit log" }).waitFor();
      const served = await t.call("admin", "GET", "/v1/audit/log/checkpoint");
      expect(served.statusCode).toBe(200);
      const [, size, root] = served.body.split("\n");
      expect(Number(size)).toBeGreaterThan(0);
      const signed = new Date(String(served.headers["last-modified"]));
      expect(Math.abs(signed.getTime() - Date.now())).toBeLessThan(10 * 60_000);
      await page.getByRole("button", { name: "Refresh" }).click();
      const shown = page.locator("dl").filter({ hasText: "Verifier key" });
      await expect.poll(() => shown.textContent(), { timeout: 10_000 }).toContain(`${Number(size).toLocaleString("en-US")} events`);
      expect(await shown.textContent()).toContain(root);
      expect(await shown.getByRole("definition").nth(2).locator("time").count()).toBe(1);
      expect(await shown.textContent()).toContain((await t.call("admin", "GET", "/v1/audit/log/key")).body.trim());
      await expectNoSeriousA11yViolations(page, "status");
      await shot(page, "status");

      // A deep link in a fresh load of the same tab keeps the session and opens that screen.
      const response = await page.goto(`${base}/console/audit`);
      expect(response?.headers()["content-security-policy"]).toBe(CONSOLE_CSP);
      await page.getByRole("heading", { level: 1, name: "Audit" }).waitFor();
      expect(cspViolations).toEqual([]);
    },
    SLOW,
  );

  it(
    "names a tenant by its slug, linked to its screen, in audit rows and details, resolving ids with one list",
    async () => {
      const tenant = await createTenant("Named Tenant");
      await t.call("admin", "POST", `/v1/tenants/${tenant.id}/activate`);
      await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenant.id, name: "named-key" });
      const { context, page } = await open();
      const tenantCalls: string[] = [];
      page.on("request", (r) => {
        const path = new URL(r.url()).pathname;
        if (path.startsWith("/v1/tenants")) tenantCalls.push(`${path}${new URL(r.url()).search}`);
      });
      await page.goto(`${base}/console/`);
      await page.getByLabel("Token").fill(t.tokens.admin);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { level: 1, name: "Tenants" }).waitFor();
      await page.goto(`${base}/console/audit`);
      await page.getByRole("heading", { level: 1, name: "Audit" }).waitFor();
      await page.getByLabel("Action").fill("api_key.created");
      const table = page.getByRole("table");
      const row = table.getByRole("row", { name: /named-key/ });
      const link = row.getByRole("link", { name: tenant.slug, exact: true });
      await link.waitFor();
      expect(await link.getAttribute("href")).toBe(`/console/tenants/${tenant.id}`);
      expect(await link.getAttribute("title")).toBe("Named Tenant");
      // Details: a tenant as target is named and linked too, never a bare id or its 8-character prefix.
      await page.getByLabel("Action").fill("tenant.activated");
      const activated = table.getByRole("row", { name: /tenant\.activated/ }).filter({ hasText: tenant.slug });
      await expect.poll(() => activated.getByRole("link", { name: tenant.slug, exact: true }).count()).toBe(2);
      expect(await table.textContent()).not.toContain(tenant.id.slice(0, 8));
      // Every id on the page came from one list of tenants; none was fetched by id.
      expect(tenantCalls.filter((c) => c.startsWith("/v1/tenants?limit=200"))).toHaveLength(1);
      expect(tenantCalls.filter((c) => /^\/v1\/tenants\/[0-9a-f-]{36}$/.test(c))).toEqual([]);
      await activated.getByRole("link", { name: tenant.slug, exact: true }).first().click();
      await page.getByRole("heading", { level: 1, name: "Named Tenant" }).waitFor();
      await context.close();
    },
    SLOW,
  );

  it(
    "keeps action names on one line on a desktop, shows one date format on every screen, and scrolls a form that opens below into view",
    async () => {
      const tenant = await createTenant("Dated");
      await t.call("admin", "POST", "/v1/entitlements", { tenant_id: tenant.id, product: "analytics", status: "active" });
      await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenant.id, name: "dated-key" });
      const { page } = admin;
      await page.goto(`${base}/console/audit`);
      await page.getByLabel("Tenant", { exact: true }).fill(tenant.slug);
      // A header and the tenant's three events, once the filter applies (its slug links from the tenant column and a detail).
      await expect.poll(() => page.getByRole("table").getByRole("row").count()).toBe(4);
      await expect.poll(() => page.getByRole("table").getByRole("link", { name: tenant.slug, exact: true }).count()).toBe(4);
      const actions = await lineCounts(page, "table.audit td.action");
      expect(actions.length).toBeGreaterThan(2);
      expect(actions.filter((a) => a.lines !== 1)).toEqual([]);

      for (const [path, heading] of [
        ["tenants", "Tenants"],
        [`tenants/${tenant.id}`, "Dated"],
        ["audit", "Audit"],
        ["status", "Status"],
      ] as const) {
        await page.goto(`${base}/console/${path}`);
        await page.getByRole("heading", { level: 1, name: heading }).waitFor();
        await page.locator("main time").first().waitFor();
        const dates = await page.locator("main time").allTextContents();
        expect(
          dates.filter((d) => !DATE.test(d)),
          path,
        ).toEqual([]);
      }

      // The tenant screen: New key sits below the fold; its form comes into view with the cursor in Name.
      await page.goto(`${base}/console/tenants/${tenant.id}`);
      await page.getByRole("heading", { level: 1, name: "Dated" }).waitFor();
      const newKey = page.getByRole("button", { name: "New key" });
      await newKey.focus();
      await page.evaluate("window.scrollTo(0, 0)");
      await page.keyboard.press("Enter");
      const form = page.getByRole("form", { name: "Create an API key" });
      await form.waitFor();
      // The form's box, relative to the viewport (800 px high).
      const box = await form.boundingBox();
      expect(box?.y).toBeGreaterThanOrEqual(0);
      expect((box?.y ?? 0) + (box?.height ?? 0)).toBeLessThanOrEqual(801);
      expect(await page.evaluate<string | undefined>("document.activeElement?.id")).toBe("key-name");
    },
    SLOW,
  );

  it(
    "an auditor sees every screen and no control that changes anything",
    async () => {
      const tenant = await createTenant("Read Only");
      await t.call("admin", "POST", "/v1/entitlements", { tenant_id: tenant.id, product: "analytics", status: "active" });
      await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenant.id, name: "ro-key" });
      const { context, page } = await open();
      await signIn(page, t.tokens.auditor);
      await page.getByRole("heading", { level: 1, name: "Tenants" }).waitFor();
      expect(await page.getByRole("button", { name: "New tenant" }).count()).toBe(0);
      await expectNoSeriousA11yViolations(page, "tenants (auditor)");

      await page.goto(`${base}/console/tenants/${tenant.id}`);
      await page.getByRole("heading", { level: 1, name: "Read Only" }).waitFor();
      await page.getByRole("cell", { name: "ro-key", exact: true }).waitFor();
      await page
        .getByRole("region", { name: /Entitlements/ })
        .getByRole("cell", { name: "analytics", exact: true })
        .waitFor();
      await page.getByRole("region", { name: "Audit trail" }).getByRole("cell", { name: "tenant.created", exact: true }).waitFor();
      // Only navigation and Sign out: nothing that changes the registry.
      const buttons = await page.getByRole("button").allTextContents();
      expect(buttons).toEqual(["Sign out"]);
      expect(await page.getByRole("combobox").count()).toBe(0);
      await expectNoSeriousA11yViolations(page, "tenant (auditor)");
      for (const screen of ["audit", "catalog", "webhooks", "status"]) {
        await page.getByRole("link", { name: screen[0]?.toUpperCase() + screen.slice(1) }).click();
        await page
          .getByRole("heading", { level: 1 })
          .filter({ hasText: new RegExp(screen, "i") })
          .waitFor();
        await expectNoSeriousA11yViolations(page, `${screen} (auditor)`);
      }
      await context.close();
    },
    SLOW,
  );

  it(
    "works from the keyboard alone",
    async () => {
      const { context, page } = await open();
      await page.goto(`${base}/console/`);
      await page.getByLabel("Token").waitFor();
      await page.keyboard.press("Tab");
      expect(await page.evaluate<string | undefined>("document.activeElement?.id")).toBe("token");
      await page.keyboard.type(t.tokens.admin);
      await page.keyboard.press("Enter");
      await page.getByRole("heading", { level: 1, name: "Tenants" }).waitFor();
      // Focus lands on the screen's heading; Shift+Tab goes back up to the navigation, Enter follows a link.
      expect(await page.evaluate<string | undefined>("document.activeElement?.tagName")).toBe("H1");
      let focused = "";
      for (let i = 0; i < 10 && focused !== "Audit"; i++) {
        await page.keyboard.press("Shift+Tab");
        focused = await page.evaluate<string>('document.activeElement?.textContent ?? ""');
      }
      expect(focused).toBe("Audit");
      await page.keyboard.press("Enter");
      await page.getByRole("heading", { level: 1, name: "Audit" }).waitFor();
      await context.close();
    },
    SLOW,
  );

  it(
    "fits a 390×844 phone without horizontal scrolling on every screen",
    async () => {
      const tenant = await createTenant("A tenant with a rather long name for a small phone screen");
      await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenant.id, name: "mobile-key", scopes: ["read", "write", "admin"] });
      await t.call("admin", "PATCH", `/v1/tenants/${tenant.id}`, { plan: "enterprise" });
      const { context, page } = await open({ width: 390, height: 844 });
      await signIn(page, t.tokens.admin);
      await page.getByRole("heading", { level: 1, name: "Tenants" }).waitFor();
      await page.getByRole("link", { name: tenant.name }).waitFor();
      await expectNoHorizontalScroll(page, "tenants");
      expect(await brokenWords(page, "table.list, header.top")).toEqual([]);
      await shot(page, "mobile-tenants");

      // The navigation is one compact row, Sign out beside it; a link out of sight scrolls into it.
      const rows = await page.evaluate<number[]>(
        `[...document.querySelectorAll("header.top nav a, header.top button")].map((e) => Math.round(e.getBoundingClientRect().top + e.getBoundingClientRect().height / 2))`,
      );
      expect(rows).toHaveLength(7);
      expect(Math.max(...rows) - Math.min(...rows)).toBeLessThanOrEqual(2);
      expect((await page.locator("header.top").boundingBox())?.height).toBeLessThanOrEqual(56);
      await page.getByRole("link", { name: "Status" }).click();
      await page.getByRole("heading", { level: 1, name: "Status" }).waitFor();

      // The audit table keeps the tenant, by slug, so an event can be attributed; no word breaks inside.
      await page.goto(`${base}/console/audit`);
      await page.getByLabel("Tenant", { exact: true }).fill(tenant.slug);
      // A header row and the tenant's three events: created, a key, the plan changed.
      await expect.poll(() => page.getByRole("table").getByRole("row").count()).toBe(4);
      expect(await page.getByRole("columnheader", { name: "Tenant" }).isVisible()).toBe(true);
      const tenantLink = page.getByRole("table").getByRole("link", { name: tenant.slug, exact: true }).first();
      await tenantLink.waitFor();
      expect(await tenantLink.isVisible()).toBe(true);
      await page.getByLabel("Tenant", { exact: true }).fill("");
      await expect.poll(() => page.getByRole("table").getByRole("row").count()).toBeGreaterThan(4);
      await expect.poll(() => page.getByRole("table").getByText("…").count()).toBe(0);
      await expectNoHorizontalScroll(page, "audit");
      expect(await brokenWords(page, "table.list")).toEqual([]);
      await shot(page, "mobile-audit");
      for (const [path, heading] of [
        [`tenants/${tenant.id}`, tenant.name],
        ["audit", "Audit"],
        ["catalog", "Catalog"],
        ["webhooks", "Webhooks"],
        ["access", "Access"],
        ["status", "Status"],
      ] as const) {
        await page.goto(`${base}/console/${path}`);
        await page.getByRole("heading", { level: 1, name: heading }).waitFor();
        await page.waitForLoadState("networkidle");
        await expectNoHorizontalScroll(page, path);
        expect(await brokenWords(page, "main table.list, main dl, header.top"), path).toEqual([]);
      }
      await context.close();
    },
    SLOW,
  );

  it(
    "lists webhook endpoints and their deliveries and retries one, against a registry that has the webhook API",
    async () => {
      // A stand-in serves the webhook API's shapes next to the real console files, so deliveries in every status show without a receiver.
      const endpoint = {
        id: "0b8f5c1e-3d4a-4f6b-9c2d-7e8f9a0b1c2d",
        url: "https://hooks.example.com/registry",
        events: ["tenant.*"],
        description: "CRM sync",
        enabled: true,
        created_at: "2026-11-01T09:00:00.000Z",
        updated_at: "2026-11-01T09:00:00.000Z",
      };
      const delivery = {
        id: "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
        event_id: "1042",
        event_type: "tenant.cancelled",
        status: "failed",
        attempts: 3,
        last_status_code: 502,
        last_error: null,
        next_attempt_at: "2026-11-01T09:05:00.000Z",
        created_at: "2026-11-01T09:00:00.000Z",
        delivered_at: null,
      };
      const retried: string[] = [];
      const stand = Fastify() as unknown as App;
      await stand.register(consoleRoutes, { root: CONSOLE_DIST });
      stand.get("/v1/me", async () => ({ name: "ops", role: "admin" }));
      const globex = {
        id: "7d1e2f3a-4b5c-4d6e-8f70-819203a4b5c6",
        slug: "globex",
        name: "Globex",
        plan: "growth",
        kind: "customer",
        status: "active",
        sales_owner: null,
        erp_customer_id: null,
        stripe_customer_id: null,
        trial_ends_at: null,
        contract_start: null,
        contract_end: null,
        created_at: "2026-10-01T09:00:00.000Z",
        updated_at: "2026-10-01T09:00:00.000Z",
      };
      stand.get("/v1/tenants", async () => ({ tenants: [globex], next_cursor: null }));
      // The delivery's event names its tenant: the console reads it from the audit stream, resumed just before it.
      const resumedAfter: unknown[] = [];
      stand.get("/v1/audit/stream", async (req, reply) => {
        resumedAfter.push(req.headers["last-event-id"]);
        const event = { id: "1042", tenant_id: globex.id, action: "tenant.cancelled" };
        return reply.header("content-type", "text/event-stream").send(`id: 1042\nevent: audit\ndata: ${JSON.stringify(event)}\n\n`);
      });
      stand.get("/v1/webhooks", async () => ({ webhooks: [endpoint] }));
      stand.get("/v1/webhooks/:id/deliveries", async () => ({ deliveries: [delivery], next_cursor: null }));
      stand.post<{ Params: { id: string; delivery: string } }>("/v1/webhooks/:id/deliveries/:delivery/retry", async (req, reply) => {
        retried.push(`${req.params.id}/${req.params.delivery}`);
        return reply.code(202).send();
      });
      const url = await stand.listen({ host: "127.0.0.1", port: 0 });
      try {
        const { context, page } = await open();
        await page.goto(`${url}/console/`);
        await page.getByLabel("Token").fill("stand-in");
        await page.getByRole("button", { name: "Sign in" }).click();
        await page.getByRole("link", { name: "Webhooks" }).click();
        const card = page.getByRole("region", { name: endpoint.url });
        await card.getByText("CRM sync").waitFor();
        await card.getByRole("button", { name: "Show deliveries" }).click();
        await card.getByRole("cell", { name: "tenant.cancelled #1042" }).waitFor();
        const tenantLink = card.getByRole("row", { name: /1042/ }).getByRole("link", { name: "globex", exact: true });
        await tenantLink.waitFor();
        expect(await tenantLink.getAttribute("href")).toBe(`/console/tenants/${globex.id}`);
        expect(resumedAfter).toEqual(["1041"]);
        await expectNoSeriousA11yViolations(page, "webhooks");
        await shot(page, "webhooks");
        await card.getByRole("button", { name: "Retry" }).click();
        await expect.poll(() => retried).toEqual([`${endpoint.id}/${delivery.id}`]);
        await context.close();
      } finally {
        await stand.close();
      }
    },
    SLOW,
  );

  it("keeps the built JS and CSS within 200 KB gzipped, and loads fast", async () => {
    const sizes = bundleSizes();
    const total = sizes.reduce((n, s) => n + s.gzip, 0);
    console.info(`console bundle: ${sizes.map((s) => `${s.file} ${s.raw} B (${s.gzip} B gzipped)`).join(", ")}; total ${total} B gzipped`);
    expect(total).toBeLessThanOrEqual(200 * 1024);

    const { context, page } = await open();
    await page.goto(`${base}/console/`);
    await page.getByLabel("Token").waitFor();
    // Navigation Timing of the first load, in the page (a string: this file is compiled without the DOM library).
    const timing = await page.evaluate<{ domContentLoaded: number; load: number }>(`(() => {
      const [nav] = performance.getEntriesByType("navigation");
      return { domContentLoaded: nav ? nav.domContentLoadedEventEnd : -1, load: nav ? nav.loadEventEnd : -1 };
    })()`);
    console.info(
      `console first load (cold cache, loopback): DOMContentLoaded ${timing.domContentLoaded.toFixed(0)} ms, load ${timing.load.toFixed(0)} ms`,
    );
    expect(timing.load).toBeGreaterThan(0);
    await context.close();
  });
});
