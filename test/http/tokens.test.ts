import { hash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";

const digestOf = (token: string) => hash("sha256", token, "base64");
const madeUp = () =>
  `rt_${randomBytes(48)
    .toString("base64")
    .replace(/[^0-9A-Za-z]/g, "")
    .slice(0, 43)}`;

describe.each(ENGINES)("managed tokens on %s", (engine) => {
  let t: TestApp;
  /** Every secret handed out, to prove none reaches a log or an audit row. */
  const secrets: string[] = [];
  beforeAll(async () => {
    t = await openTestApp(engine);
  });
  afterAll(() => t.close());

  const as = (token: string, method: string, url: string, body?: unknown) =>
    t.app.inject({
      method: method as "GET",
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(body !== undefined ? { payload: body as object } : {}),
    });
  const create = async (body: Record<string, unknown>, token = t.tokens.admin) => {
    const res = await as(token, "POST", "/v1/tokens", body);
    expect(res.statusCode, res.body).toBe(201);
    const created = res.json();
    secrets.push(created.token);
    return created as { id: string; name: string; role: string; token: string; prefix: string; expires_at: string | null };
  };
  const name = () => uniqueSlug("tok");
  const auditOf = (id: string) =>
    t.store.db.query<{ action: string; actor_id: string; metadata: Record<string, unknown> }>(
      "SELECT action, actor_id, metadata FROM audit_events WHERE target_type = 'token' AND target_id = $1 ORDER BY id",
      [id],
    );
  const tokenCount = async () => Number((await t.store.db.query<{ n: string }>("SELECT count(*)::text AS n FROM managed_tokens"))[0]?.n);
  const tenantCount = async () => Number((await t.store.db.query<{ n: string }>("SELECT count(*)::text AS n FROM tenants"))[0]?.n);

  it("creates a token whose secret is shown once and which authenticates as itself", async () => {
    const n = name();
    const created = await create({ name: n, role: "service", description: "  billing worker  " });
    expect(created.token).toMatch(/^rt_[0-9A-Za-z]{43}$/);
    expect(created.prefix).toBe(created.token.slice(0, 11));
    expect(created).toMatchObject({ name: n, role: "service", description: "billing worker", created_by: "admin", expires_at: null });
    expect(created).toMatchObject({ revoked_at: null, last_used_at: null, rotated_to: null, grace_ends_at: null });

    const me = await as(created.token, "GET", "/v1/me");
    expect(me.json()).toEqual({ name: n, role: "service", kind: "token" });
    // Its role, not more.
    expect((await as(created.token, "GET", "/v1/tokens")).statusCode).toBe(403);

    const one = await t.call("auditor", "GET", `/v1/tokens/${created.id}`);
    expect(one.statusCode).toBe(200);
    const { token: _secret, ...shown } = created;
    expect(one.json()).toMatchObject({ ...shown, last_used_at: null });
    const list = await t.call("auditor", "GET", "/v1/tokens");
    expect(list.json().tokens[0].id).toBe(created.id);
    for (const body of [one.body, list.body]) {
      expect(body).not.toContain(created.token);
      expect(body).not.toContain(digestOf(created.token));
      expect(body).not.toContain("digest");
    }
    expect((await t.call("auditor", "GET", "/v1/tokens/6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10")).statusCode).toBe(404);

    // last_used_at is written off the request path, coalesced.
    await t.app.access.lastUsed.flush();
    expect((await t.call("auditor", "GET", `/v1/tokens/${created.id}`)).json().last_used_at).not.toBeNull();
  });

  it("names the token in the audit trail: its changes' actor_id and the tokens it creates' created_by", async () => {
    const boss = await create({ name: name(), role: "admin" });
    const tenant = await as(boss.token, "POST", "/v1/tenants", { slug: uniqueSlug(), name: "By token" });
    expect(tenant.statusCode).toBe(201);
    const [event] = await t.store.db.query<{ actor_id: string; metadata: Record<string, unknown> }>(
      "SELECT actor_id, metadata FROM audit_events WHERE action = 'tenant.created' AND target_id = $1",
      [tenant.json().id],
    );
    expect(event?.actor_id).toBe(boss.name);
    expect(event?.metadata).not.toHaveProperty("principal");

    const child = await create({ name: name(), role: "auditor" }, boss.token);
    expect(child).toMatchObject({ created_by: boss.name });
    const events = await auditOf(child.id);
    expect(events).toEqual([
      {
        action: "token.created",
        actor_id: boss.name,
        metadata: { name: child.name, role: "auditor", prefix: child.prefix, expires_at: null },
      },
    ]);
  });

  it("refuses bad input with a clear error and changes nothing", async () => {
    const live = await create({ name: name(), role: "service" });
    const before = await tokenCount();
    const soon = new Date(Date.now() - 1000).toISOString();
    const cases: [Record<string, unknown>, number, string?][] = [
      [{ name: live.name, role: "auditor" }, 409],
      [{ name: "admin", role: "admin" }, 409],
      [{ name: "products", role: "service" }, 409],
      [{ name: "compliance", role: "auditor" }, 409],
      [{ name: name(), role: "owner" }, 400, "body/role"],
      [{ name: name(), role: "service", expires_at: soon }, 400, "body/expires_at"],
      [{ name: "has space", role: "service" }, 400, "body/name"],
      [{ name: name() }, 400],
      [{ name: name(), role: "service", token: "rt_chosen" }, 400],
    ];
    for (const [body, status, field] of cases) {
      const res = await t.call("admin", "POST", "/v1/tokens", body);
      expect(res.statusCode, JSON.stringify(body)).toBe(status);
      expect(res.headers["content-type"]).toContain("application/problem+json");
      if (field) expect(JSON.stringify(res.json().errors)).toContain(field);
    }
    for (const grace_seconds of [-1, 604_801, 1.5, "60"]) {
      const res = await t.call("admin", "POST", `/v1/tokens/${live.id}/rotate`, { grace_seconds });
      expect(res.statusCode, String(grace_seconds)).toBe(400);
    }
    expect(await tokenCount()).toBe(before);
    expect((await as(live.token, "GET", "/v1/me")).statusCode).toBe(200);
  });

  it("a revoked token is refused at once and changes nothing; revoking again is 204 with no new audit event", async () => {
    const victim = await create({ name: name(), role: "admin" });
    expect((await as(victim.token, "GET", "/v1/me")).statusCode).toBe(200);
    expect((await t.call("admin", "DELETE", `/v1/tokens/${victim.id}`)).statusCode).toBe(204);
    const tenants = await tenantCount();
    const refused = await as(victim.token, "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Nope" });
    expect(refused.statusCode).toBe(401);
    expect(await tenantCount()).toBe(tenants);
    expect((await t.call("admin", "DELETE", `/v1/tokens/${victim.id}`)).statusCode).toBe(204);
    expect((await auditOf(victim.id)).map((e) => e.action)).toEqual(["token.created", "token.revoked"]);
    expect((await t.call("admin", "DELETE", "/v1/tokens/6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10")).statusCode).toBe(404);
    expect((await t.call("auditor", "GET", `/v1/tokens/${victim.id}`)).json().revoked_at).not.toBeNull();
    // Its name is free again.
    await create({ name: victim.name, role: "service" });
    // A token revoking itself: the audit actor is its own name.
    const self = await create({ name: name(), role: "admin" });
    expect((await as(self.token, "DELETE", `/v1/tokens/${self.id}`)).statusCode).toBe(204);
    expect((await auditOf(self.id))[1]).toMatchObject({ action: "token.revoked", actor_id: self.name });
    expect((await as(self.token, "GET", "/v1/me")).statusCode).toBe(401);
  });

  it("an expired token is refused as its expiry passes, though it was cached", async () => {
    const short = await create({ name: name(), role: "service", expires_at: new Date(Date.now() + 1500).toISOString() });
    expect((await as(short.token, "GET", "/v1/me")).statusCode).toBe(200);
    await expect.poll(async () => (await as(short.token, "GET", "/v1/me")).statusCode, { timeout: 5000, interval: 100 }).toBe(401);
    // Its name is free again; rotating it is a conflict.
    expect((await t.call("admin", "POST", `/v1/tokens/${short.id}/rotate`, {})).statusCode).toBe(409);
    await create({ name: short.name, role: "service" });
  });

  it("rotates: a new token with the same name, role and expiry; the old one works until its grace ends", async () => {
    const expires_at = new Date(Date.now() + 86_400_000).toISOString();
    const old = await create({ name: name(), role: "auditor", expires_at });
    expect((await as(old.token, "GET", "/v1/me")).statusCode).toBe(200);
    const res = await t.call("admin", "POST", `/v1/tokens/${old.id}/rotate`, { grace_seconds: 1 });
    expect(res.statusCode).toBe(201);
    const fresh = res.json();
    secrets.push(fresh.token);
    expect(fresh).toMatchObject({ name: old.name, role: "auditor", expires_at: old.expires_at, rotated_to: null });
    expect(fresh.token).not.toBe(old.token);
    expect((await as(fresh.token, "GET", "/v1/me")).json()).toEqual({ name: old.name, role: "auditor", kind: "token" });
    expect((await as(old.token, "GET", "/v1/me")).statusCode).toBe(200);
    const retired = (await t.call("auditor", "GET", `/v1/tokens/${old.id}`)).json();
    expect(retired.rotated_to).toBe(fresh.id);
    expect(Date.parse(retired.grace_ends_at)).toBeGreaterThan(Date.now() - 1000);
    await expect.poll(async () => (await as(old.token, "GET", "/v1/me")).statusCode, { timeout: 5000, interval: 100 }).toBe(401);
    expect((await as(fresh.token, "GET", "/v1/me")).statusCode).toBe(200);
    const [, rotated] = await auditOf(old.id);
    expect(rotated).toMatchObject({ action: "token.rotated", actor_id: "admin", metadata: { name: old.name, rotated_to: fresh.id } });
    // Only once: the successor is the one to rotate.
    expect((await t.call("admin", "POST", `/v1/tokens/${old.id}/rotate`, {})).statusCode).toBe(409);
  });

  it("rotates with a day's grace by default (no body), and with none when asked", async () => {
    const old = await create({ name: name(), role: "service" });
    const res = await t.call("admin", "POST", `/v1/tokens/${old.id}/rotate`);
    expect(res.statusCode, res.body).toBe(201);
    secrets.push(res.json().token);
    const retired = (await t.call("auditor", "GET", `/v1/tokens/${old.id}`)).json();
    expect(Math.abs(Date.parse(retired.grace_ends_at) - Date.now() - 86_400_000)).toBeLessThan(60_000);
    expect((await as(old.token, "GET", "/v1/me")).statusCode).toBe(200);

    const next = res.json();
    expect((await as(next.token, "GET", "/v1/me")).statusCode).toBe(200);
    const now = await t.call("admin", "POST", `/v1/tokens/${next.id}/rotate`, { grace_seconds: 0 });
    expect(now.statusCode).toBe(201);
    secrets.push(now.json().token);
    expect((await as(next.token, "GET", "/v1/me")).statusCode).toBe(401);
    // The list holds all three, newest first.
    const ids = (await t.call("admin", "GET", "/v1/tokens")).json().tokens.map((x: { id: string }) => x.id);
    expect(ids.indexOf(now.json().id)).toBeLessThan(ids.indexOf(next.id));
    expect(ids.indexOf(next.id)).toBeLessThan(ids.indexOf(old.id));
  });

  it("refuses made-up tokens, and roles too weak", async () => {
    for (const token of [madeUp(), madeUp(), "rt_short"]) {
      expect((await as(token, "GET", "/v1/me")).statusCode).toBe(401);
    }
    const auditor = await create({ name: name(), role: "auditor" });
    expect((await as(auditor.token, "GET", "/v1/tokens")).statusCode).toBe(200);
    expect((await as(auditor.token, "POST", "/v1/tokens", { name: name(), role: "admin" })).statusCode).toBe(403);
    expect((await as(auditor.token, "DELETE", `/v1/tokens/${auditor.id}`)).statusCode).toBe(403);
  });

  it("no secret reaches a log line or an audit row", async () => {
    expect(secrets.length).toBeGreaterThan(5);
    const logs = t.logs.join("");
    const audit = JSON.stringify(await t.store.db.query("SELECT metadata FROM audit_events"));
    for (const s of secrets) {
      expect(logs).not.toContain(s);
      expect(audit).not.toContain(s);
      expect(audit).not.toContain(digestOf(s));
    }
  });
});
