import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { embeddedIpv4, isNonPublicAddress, resolveWebhookTarget } from "../../src/domain/webhook-address.js";
import { openTestApp, type TestApp } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";

// A public address (example.com's); endpoints made with it are created
// disabled so that nothing is ever sent there.
const PUBLIC_URL = "http://93.184.216.34/hooks/registry?token=s3cr3t";

describe("the SSRF guard's address classes", () => {
  it.each([
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "192.0.2.10",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
  ])("refuses %s", (a) => expect(isNonPublicAddress(a)).toBe(true));
  it.each(["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])("accepts %s", (a) =>
    expect(isNonPublicAddress(a)).toBe(false),
  );
  // The IPv6 forms that embed IPv4, judged by every address they embed (host as the URL parser writes it).
  it.each([
    ["IPv4-mapped, dotted", "::ffff:127.0.0.1", ["127.0.0.1"]],
    ["IPv4-mapped, hex", "::ffff:a00:1", ["10.0.0.1"]],
    ["IPv4-translated", "::ffff:0:7f00:1", ["127.0.0.1"]],
    ["IPv4-translated, dotted", "::ffff:0:169.254.169.254", ["169.254.169.254"]],
    ["NAT64", "64:ff9b::7f00:1", ["127.0.0.1"]],
    ["NAT64, dotted", "64:ff9b::192.168.1.1", ["192.168.1.1"]],
    ["6to4", "2002:7f00:1::", ["127.0.0.1"]],
    ["6to4 with a host part", "2002:a9fe:a9fe:1::5", ["169.254.169.254"]],
    ["Teredo, client 127.0.0.1", "2001:0:5db8:d822::80ff:fffe", ["93.184.216.34", "127.0.0.1"]],
    ["Teredo, server 10.x", "2001:0:a01:203::a247:27dd", ["10.1.2.3", "93.184.216.34"]],
  ])("refuses %s (%s), which embeds a non-public address", (_form, address, embeds) => {
    expect(embeddedIpv4(address)).toEqual(embeds);
    expect(isNonPublicAddress(address)).toBe(true);
  });
  it.each([
    ["local-use NAT64, whole", "64:ff9b:1::808:808"],
    ["local-use NAT64, loopback", "64:ff9b:1::7f00:1"],
    ["IPv4-compatible", "::7f00:1"],
  ])("refuses %s (%s)", (_form, address) => expect(isNonPublicAddress(address)).toBe(true));
  it.each([
    ["IPv4-mapped", "::ffff:808:808", ["8.8.8.8"]],
    ["IPv4-translated", "::ffff:0:808:808", ["8.8.8.8"]],
    ["NAT64", "64:ff9b::5db8:d822", ["93.184.216.34"]],
    ["6to4", "2002:5db8:d822::1", ["93.184.216.34"]],
    ["Teredo", "2001:0:5db8:d822::f7f7:f7f7", ["93.184.216.34", "8.8.8.8"]],
  ])("accepts %s (%s), which embeds only public addresses", (_form, address, embeds) => {
    expect(embeddedIpv4(address)).toEqual(embeds);
    expect(isNonPublicAddress(address)).toBe(false);
  });
  it("embeds nothing in other IPv6 addresses", () => {
    expect(embeddedIpv4("2606:4700:4700::1111")).toEqual([]);
    expect(embeddedIpv4("2001:db8::1")).toEqual([]);
    expect(embeddedIpv4("2001:4860::8888")).toEqual([]);
  });
  it("refuses a name with any non-public answer, and one that does not resolve", async () => {
    const resolve = async () => [
      { address: "93.184.216.34", family: 4 },
      { address: "10.0.0.5", family: 4 },
    ];
    await expect(resolveWebhookTarget(new URL("http://mixed.example/"), false, resolve)).rejects.toThrow(/10\.0\.0\.5/);
    const none = async () => {
      throw new Error("ENOTFOUND");
    };
    await expect(resolveWebhookTarget(new URL("http://nowhere.example/"), true, none)).rejects.toThrow(/cannot be resolved/);
    await expect(
      resolveWebhookTarget(new URL("http://fine.example/"), false, async () => [{ address: "8.8.4.4", family: 4 }]),
    ).resolves.toEqual({ address: "8.8.4.4", family: 4 });
  });
});

describe.each(ENGINES)("webhook endpoints API (%s)", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
  });
  afterAll(() => t?.close());

  const create = (body: unknown) => t.call("admin", "POST", "/v1/webhooks", body);

  it("creates an endpoint: 201, Location, the secret once, audited without it", async () => {
    const res = await create({ url: PUBLIC_URL, events: ["tenant.*", "api_key.revoked"], description: "CRM", enabled: false });
    expect(res.statusCode).toBe(201);
    const hook = res.json() as { id: string; secret: string; url: string; events: string[]; enabled: boolean };
    expect(res.headers.location).toBe(`/v1/webhooks/${hook.id}`);
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(hook.secret.slice(6), "base64")).toHaveLength(32);
    expect(hook).toMatchObject({ url: PUBLIC_URL, events: ["tenant.*", "api_key.revoked"], enabled: false, description: "CRM" });

    const one = await t.call("auditor", "GET", `/v1/webhooks/${hook.id}`);
    expect(one.statusCode).toBe(200);
    expect(one.json()).not.toHaveProperty("secret");
    const list = await t.call("auditor", "GET", "/v1/webhooks");
    expect(list.body).toContain(hook.id);
    expect(list.body).not.toContain(hook.secret.slice(6));
    // Auditors see the URL without its query and fragment (they may hold credentials); admins see it whole.
    expect(one.json()).toMatchObject({ url: "http://93.184.216.34/hooks/registry" });
    expect(list.body).not.toContain("s3cr3t");
    const fragment = (await create({ url: "http://93.184.216.34/in#key=s3cr3t", events: ["*"], enabled: false })).json() as { id: string };
    expect((await t.call("auditor", "GET", `/v1/webhooks/${fragment.id}`)).json()).toMatchObject({ url: "http://93.184.216.34/in" });
    expect((await t.call("auditor", "GET", "/v1/webhooks")).body).not.toContain("s3cr3t");
    expect((await t.call("admin", "GET", `/v1/webhooks/${hook.id}`)).json()).toMatchObject({ url: PUBLIC_URL });
    expect((await t.call("admin", "GET", `/v1/webhooks/${fragment.id}`)).json()).toMatchObject({
      url: "http://93.184.216.34/in#key=s3cr3t",
    });
    expect((await t.call("admin", "GET", "/v1/webhooks")).body).toContain(PUBLIC_URL);

    const audit = await t.call("admin", "GET", "/v1/audit?action=webhook.created");
    const event = (audit.json() as { events: { target_id: string; metadata: Record<string, unknown> }[] }).events.find(
      (e) => e.target_id === hook.id,
    );
    // The query string can carry a token: the trail keeps the URL without it.
    expect(event?.metadata).toMatchObject({ url: "http://93.184.216.34/hooks/registry", events: ["tenant.*", "api_key.revoked"] });
    expect(audit.body).not.toContain("s3cr3t");
    expect(t.logs.join("")).not.toContain(hook.secret.slice(6));
  });

  it("refuses non-public, unresolvable and non-http URLs with 400 naming the field", async () => {
    for (const url of [
      "http://127.0.0.1:8080/hook",
      "http://localhost/hook",
      "http://10.0.0.8/hook",
      "http://169.254.169.254/latest/meta-data",
      "http://[::1]/hook",
      "http://[::ffff:127.0.0.1]/hook",
      "http://[::ffff:a9fe:a9fe]/hook",
      "http://[fd00::1]/hook",
      "http://[64:ff9b:1::7f00:1]/",
      "http://[::ffff:0:127.0.0.1]/",
      "http://[2002:7f00:1::]/",
      "http://[64:ff9b::10.0.0.1]/",
      "http://[2001:0:5db8:d822::80ff:fffe]/",
      "http://[2001:0:a01:203::a247:27dd]/",
      "http://0x7f000001/hook",
      "http://2130706433/hook",
      "http://does-not-exist.invalid/hook",
      "ftp://93.184.216.34/hook",
      "http://user:pass@93.184.216.34/hook",
    ]) {
      const res = await create({ url, events: ["*"] });
      expect(res.statusCode, url).toBe(400);
      expect(res.json(), url).toMatchObject({ code: "invalid_input", errors: [{ field: "body/url" }] });
    }
  });

  it("validates events: 1-50 patterns of actions, prefix wildcards or *", async () => {
    for (const events of [[], ["Tenant.Created"], ["tenant.*.x"], ["*.created"], Array.from({ length: 51 }, (_, i) => `a${i}`)]) {
      const res = await create({ url: PUBLIC_URL, events, enabled: false });
      expect(res.statusCode, JSON.stringify(events)).toBe(400);
    }
    expect((await create({ url: PUBLIC_URL, events: ["*"], enabled: false, extra: 1 })).statusCode).toBe(400);
    expect((await create({ url: `http://93.184.216.34/${"a".repeat(2000)}`, events: ["*"], enabled: false })).statusCode).toBe(400);
  });

  it("changes an endpoint (audited with what changed), checks a new URL, deletes it (audited)", async () => {
    const hook = (await create({ url: PUBLIC_URL, events: ["*"], enabled: false })).json() as { id: string };
    const patched = await t.call("admin", "PATCH", `/v1/webhooks/${hook.id}`, { events: ["tenant.cancelled"], description: "billing" });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ events: ["tenant.cancelled"], description: "billing", enabled: false });
    expect((await t.call("admin", "PATCH", `/v1/webhooks/${hook.id}`, { url: "http://192.168.0.10/x" })).statusCode).toBe(400);
    for (const url of [
      "http://[64:ff9b:1::7f00:1]/",
      "http://[::ffff:0:127.0.0.1]/",
      "http://[2002:7f00:1::]/",
      "http://[2001:0:a01:203::a247:27dd]/",
    ]) {
      const res = await t.call("admin", "PATCH", `/v1/webhooks/${hook.id}`, { url });
      expect(res.statusCode, url).toBe(400);
      expect(res.json(), url).toMatchObject({ code: "invalid_input", errors: [{ field: "body/url" }] });
    }
    // Public addresses embedded in the same forms are accepted (disabled endpoints: nothing is sent).
    for (const url of ["http://[2002:5db8:d822::1]/", "http://[64:ff9b::5db8:d822]/", "http://[2001:0:5db8:d822::f7f7:f7f7]/"]) {
      expect((await create({ url, events: ["*"], enabled: false })).statusCode, url).toBe(201);
    }
    const audit = await t.call("admin", "GET", "/v1/audit?action=webhook.updated");
    const updated = (audit.json() as { events: { target_id: string; metadata: { changes: Record<string, unknown> } }[] }).events.filter(
      (e) => e.target_id === hook.id,
    );
    expect(updated).toHaveLength(1);
    expect(Object.keys(updated[0]?.metadata.changes ?? {}).sort()).toEqual(["description", "events"]);

    expect((await t.call("admin", "DELETE", `/v1/webhooks/${hook.id}`)).statusCode).toBe(204);
    expect((await t.call("admin", "GET", `/v1/webhooks/${hook.id}`)).statusCode).toBe(404);
    expect((await t.call("admin", "DELETE", `/v1/webhooks/${hook.id}`)).statusCode).toBe(404);
    const deleted = await t.call("admin", "GET", "/v1/audit?action=webhook.deleted");
    expect(deleted.body).toContain(hook.id);
  });

  it("answers 404 for unknown endpoints and 400 for malformed ids and cursors", async () => {
    const unknown = "00000000-0000-4000-8000-000000000000";
    expect((await t.call("admin", "GET", `/v1/webhooks/${unknown}`)).statusCode).toBe(404);
    expect((await t.call("admin", "POST", `/v1/webhooks/${unknown}/rotate-secret`)).statusCode).toBe(404);
    expect((await t.call("admin", "POST", `/v1/webhooks/${unknown}/test`)).statusCode).toBe(404);
    expect((await t.call("admin", "GET", `/v1/webhooks/${unknown}/deliveries`)).statusCode).toBe(404);
    expect((await t.call("admin", "GET", "/v1/webhooks/nope")).statusCode).toBe(400);
    const hook = (await create({ url: PUBLIC_URL, events: ["*"], enabled: false })).json() as { id: string };
    expect((await t.call("admin", "GET", `/v1/webhooks/${hook.id}/deliveries?cursor=forged`)).statusCode).toBe(400);
    expect((await t.call("admin", "GET", `/v1/webhooks/${hook.id}/deliveries?status=lost`)).statusCode).toBe(400);
    expect((await t.call("admin", "GET", `/v1/webhooks/${hook.id}/deliveries?limit=201`)).statusCode).toBe(400);
  });

  it("lets only admin change endpoints; auditors read", async () => {
    expect((await t.call("auditor", "POST", "/v1/webhooks", { url: PUBLIC_URL, events: ["*"] })).statusCode).toBe(403);
    expect((await t.call("service", "GET", "/v1/webhooks")).statusCode).toBe(403);
    expect((await t.call("auditor", "GET", "/v1/webhooks")).statusCode).toBe(200);
  });
});
