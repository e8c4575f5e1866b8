import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhookInsert } from "../../src/store/webhooks.js";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";
import { type Receiver, startReceiver } from "../helpers/receiver.js";

// Fast retries so the tests need not wait 5 s: retry n after 100 * 2^(n-1) ms.
const FAST = {
  WEBHOOK_ALLOW_PRIVATE: "true",
  WEBHOOK_RETRY_BASE_MS: "100",
  WEBHOOK_RETRY_MAX_MS: "400",
  WEBHOOK_POLL_MS: "100",
  WEBHOOK_TIMEOUT_MS: "5000",
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.each(ENGINES)("webhook delivery (%s)", (engine) => {
  let t: TestApp;
  const receivers: Receiver[] = [];
  const receiver = async (port = 0) => {
    const r = await startReceiver("/hook", port);
    receivers.push(r);
    return r;
  };

  beforeAll(async () => {
    t = await openTestApp(engine, undefined, FAST);
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all(receivers.map((r) => r.close()));
  });

  const createHook = async (url: string, events: string[]) => {
    const res = await t.call("admin", "POST", "/v1/webhooks", { url, events });
    expect(res.statusCode).toBe(201);
    return res.json() as { id: string; secret: string };
  };
  const createTenant = async () => {
    const res = await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Hooked" });
    expect(res.statusCode).toBe(201);
    return res.json() as { id: string };
  };

  it("delivers matching actions only, signed as Standard Webhooks, the data exactly as GET /v1/audit shows it", async () => {
    const r = await receiver();
    const hook = await createHook(r.url, ["tenant.created", "entitlement.*"]);
    const tenant = await createTenant();
    expect((await t.call("admin", "POST", `/v1/tenants/${tenant.id}/activate`)).statusCode).toBe(200);
    const grant = await t.call("admin", "POST", "/v1/entitlements", { tenant_id: tenant.id, product: "analytics", status: "active" });
    expect(grant.statusCode).toBe(201);
    await r.waitFor(2);
    await sleep(500);
    // At least once: a receiver de-duplicates on webhook-id (a slow answer may have been sent again).
    const ids = r.received.map((x) => String(x.headers["webhook-id"]));
    const bodies = r.verifyAll(hook.secret).filter((_, i) => ids.indexOf(ids[i] as string) === i);
    expect(bodies.map((b) => b.type)).toEqual(["tenant.created", "entitlement.granted"]);
    const audit = await t.call("admin", "GET", `/v1/audit?tenant_id=${tenant.id}`);
    const events = (audit.json() as { events: { id: string; action: string }[] }).events;
    const created = events.find((e) => e.action === "tenant.created");
    // The payload shows the event as committed: log_index is set later (the audit log), so it is null there.
    expect(bodies[0]?.data).toEqual({ ...created, log_index: null });
    expect(bodies[0]?.timestamp).toBe((created as unknown as { created_at: string }).created_at);
    expect(r.received[0]?.headers["webhook-id"]).toBe(`msg_${created?.id}`);
    expect(r.received[0]?.headers["content-type"]).toBe("application/json");
    // tenant.activated matched no pattern.
    expect(bodies.some((b) => b.type === "tenant.activated")).toBe(false);
    const list = await t.call("auditor", "GET", `/v1/webhooks/${hook.id}/deliveries?status=succeeded`);
    const deliveries = (list.json() as { deliveries: { status: string; attempts: number; event_type: string }[] }).deliveries;
    expect(deliveries.map((d) => d.event_type).sort()).toEqual(["entitlement.granted", "tenant.created"]);
    expect(deliveries.every((d) => d.status === "succeeded")).toBe(true);
    const metrics = (await t.call("auditor", "GET", "/metrics")).body;
    expect(metrics).toMatch(/^tenant_registry_webhook_attempts_total\{outcome="succeeded"\} [1-9]/m);
    expect(metrics).toMatch(/^tenant_registry_webhook_delivery_lag_seconds_count [1-9]/m);
    expect(metrics).toMatch(/^tenant_registry_webhook_queue_depth \d+/m);
    expect(metrics).toMatch(/^tenant_registry_stream_subscribers\{stream="audit"\} 0/m);
  });

  it("keeps webhook-id across a failed attempt and its retry", async () => {
    const r = await receiver();
    let calls = 0;
    r.answer = () => (++calls === 1 ? 500 : 200);
    const hook = await createHook(r.url, ["tenant.created"]);
    await createTenant();
    await r.waitFor(2);
    const [first, second] = r.received;
    expect(first?.headers["webhook-id"]).toBe(second?.headers["webhook-id"]);
    expect(first?.body).toBe(second?.body);
    r.verifyAll(hook.secret);
    const list = await until("the delivery to succeed", async () => {
      const res = await t.call("admin", "GET", `/v1/webhooks/${hook.id}/deliveries`);
      const d = (res.json() as { deliveries: { status: string; attempts: number; last_status_code: number }[] }).deliveries;
      return d[0]?.status === "succeeded" ? d : undefined;
    });
    expect(list[0]?.attempts).toBe(2);
    expect(list[0]?.last_status_code).toBe(200);
  });

  it("delivers everything once a receiver that was down comes back", async () => {
    const probe = await receiver();
    const port = Number(new URL(probe.url).port);
    const hook = await createHook(probe.url, ["tenant.created"]);
    await probe.close();
    const tenants = [];
    for (let i = 0; i < 5; i++) tenants.push(await createTenant());
    // Let a few attempts fail (connection refused) before the receiver returns.
    await until("failed attempts", async () => {
      const res = await t.call("admin", "GET", `/v1/webhooks/${hook.id}/deliveries?status=failed`);
      const d = (res.json() as { deliveries: unknown[] }).deliveries;
      return d.length === 5 ? d : undefined;
    });
    const back = await receiver(port);
    await back.waitFor(5, 15_000);
    const bodies = back.verifyAll(hook.secret);
    expect(new Set(bodies.map((b) => b.data.tenant_id))).toEqual(new Set(tenants.map((x) => x.id)));
  });

  it("signs with both secrets for a day after a rotation; each verifies alone", async () => {
    const r = await receiver();
    const hook = await createHook(r.url, ["tenant.created"]);
    const rotated = await t.call("admin", "POST", `/v1/webhooks/${hook.id}/rotate-secret`);
    expect(rotated.statusCode).toBe(200);
    const { secret, previous_secret_expires_at } = rotated.json() as { secret: string; previous_secret_expires_at: string };
    expect(secret).toMatch(/^whsec_/);
    expect(secret).not.toBe(hook.secret);
    expect(Date.parse(previous_secret_expires_at) - Date.now()).toBeGreaterThan(23 * 3600_000);
    await createTenant();
    await r.waitFor(1);
    expect(String(r.received[0]?.headers["webhook-signature"]).split(" ")).toHaveLength(2);
    expect(r.verifyAll(secret)).toHaveLength(1);
    expect(r.verifyAll(hook.secret)).toHaveLength(1);
    const audit = await t.call("admin", "GET", "/v1/audit?action=webhook.secret_rotated");
    const text = audit.body;
    expect(text).toContain(hook.id);
    expect(text).not.toContain(secret.slice(6));
    expect(text).not.toContain(hook.secret.slice(6));
  });

  it("sends webhook.test to that endpoint only, whatever its patterns", async () => {
    const a = await receiver();
    const b = await receiver();
    const hookA = await createHook(a.url, ["nothing.matches.this"]);
    await createHook(b.url, ["*"]);
    const res = await t.call("admin", "POST", `/v1/webhooks/${hookA.id}/test`);
    expect(res.statusCode).toBe(202);
    const { message_id } = res.json() as { message_id: string };
    expect(message_id).toMatch(/^msg_test_[0-9a-f-]{36}$/);
    await a.waitFor(1);
    const [body] = a.verifyAll(hookA.secret);
    expect(body).toMatchObject({ type: "webhook.test", data: { webhook_id: hookA.id } });
    expect(a.received[0]?.headers["webhook-id"]).toBe(message_id);
    await sleep(300);
    expect(b.received.filter((x) => x.body.includes("webhook.test"))).toHaveLength(0);
    // Not an audit event.
    expect((await t.call("admin", "GET", "/v1/audit?action=webhook.test")).json()).toMatchObject({ events: [] });
  });

  it("retries a delivery by hand: a new attempt now, same webhook-id", async () => {
    const r = await receiver();
    const hook = await createHook(r.url, ["tenant.created"]);
    await createTenant();
    await r.waitFor(1);
    const list = await until("the delivery", async () => {
      const res = await t.call("admin", "GET", `/v1/webhooks/${hook.id}/deliveries?status=succeeded`);
      return (res.json() as { deliveries: { id: string }[] }).deliveries[0];
    });
    const retry = await t.call("admin", "POST", `/v1/webhooks/${hook.id}/deliveries/${list.id}/retry`);
    expect(retry.statusCode).toBe(202);
    await r.waitFor(2);
    expect(r.received[1]?.headers["webhook-id"]).toBe(r.received[0]?.headers["webhook-id"]);
    expect((await t.call("admin", "POST", `/v1/webhooks/${hook.id}/deliveries/${hook.id}/retry`)).statusCode).toBe(404);
  });

  it("a slow endpoint does not delay another one", { timeout: 90_000 }, async () => {
    // A store of its own, whose timeout lets the slow answers succeed.
    const t3 = await openTestApp(engine, undefined, { ...FAST, WEBHOOK_TIMEOUT_MS: "20000" });
    const release: (() => void)[] = [];
    try {
      const slow = await receiver();
      const fast = await receiver();
      // Far slower than a fast delivery takes even on a loaded machine: one queued behind a slow
      // answer would lag at least SLOW_MS; the fast ones must arrive well before that.
      const SLOW_MS = 10_000;
      slow.answer = () =>
        new Promise((r) => {
          const timer = setTimeout(() => r(200), SLOW_MS);
          release.push(() => {
            clearTimeout(timer);
            r(200);
          });
        });
      const create = async (url: string) =>
        (await t3.call("admin", "POST", "/v1/webhooks", { url, events: ["tenant.created"] })).json() as { id: string; secret: string };
      await create(slow.url);
      const hook = await create(fast.url);
      for (let i = 0; i < 12; i++) {
        expect((await t3.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Slow" })).statusCode).toBe(201);
      }
      await fast.waitFor(12, 15_000);
      const lags = fast.verifyAll(hook.secret).map((b, i) => (fast.received[i]?.at ?? 0) - Date.parse(String(b.data.created_at)));
      expect(Math.max(...lags)).toBeLessThan(SLOW_MS - 3000);
      // Once it has answered, the slow endpoint gets its 8 slots per instance, and no more.
      await slow.waitFor(9, 40_000);
      expect(slow.maxInFlight).toBeLessThanOrEqual(8);
    } finally {
      for (const r of release) r();
      await t3.close();
    }
  });

  it("gives up after the retry window: dead", async () => {
    // A store of its own: the shared store's worker, with the default retry window, could claim the
    // attempt instead and keep retrying it.
    const t2 = await openTestApp(engine, undefined, { ...FAST, WEBHOOK_RETRY_WINDOW_MS: "300" });
    try {
      const r = await receiver();
      r.answer = () => 503;
      const res = await t2.call("admin", "POST", "/v1/webhooks", { url: r.url, events: ["tenant.created"] });
      const hook = res.json() as { id: string };
      await t2.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Dead" });
      const dead = await until("the delivery to die", async () => {
        const l = await t2.call("admin", "GET", `/v1/webhooks/${hook.id}/deliveries?status=dead`);
        return (l.json() as { deliveries: { attempts: number; next_attempt_at: string | null }[] }).deliveries[0];
      });
      expect(dead.attempts).toBeGreaterThanOrEqual(1);
      expect(dead.next_attempt_at).toBeNull();
    } finally {
      await t2.close();
    }
  });

  it("checks the address again at delivery: a private address stored earlier is refused, not connected to", {
    timeout: 90_000,
  }, async () => {
    // A store of its own: no permissive worker shares it.
    const strict = await openTestApp(engine, undefined, { ...FAST, WEBHOOK_ALLOW_PRIVATE: "false" });
    try {
      const r = await receiver();
      // As if created while private addresses were allowed.
      const [last] = await strict.store.db.query<{ id: string }>("SELECT coalesce(max(id), 0)::text AS id FROM audit_events");
      const id = crypto.randomUUID();
      await webhookInsert(strict.store.db, {
        id,
        url: r.url,
        events: ["tenant.created"],
        description: null,
        enabled: true,
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        afterEventId: last?.id ?? "0",
      });
      // The same receiver behind an IPv6 form that embeds its IPv4 address (IPv4-translated).
      const embedded = crypto.randomUUID();
      await webhookInsert(strict.store.db, {
        id: embedded,
        url: r.url.replace("127.0.0.1", "[::ffff:0:127.0.0.1]"),
        events: ["tenant.created"],
        description: null,
        enabled: true,
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        afterEventId: last?.id ?? "0",
      });
      await strict.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Rebound" });
      for (const hook of [id, embedded]) {
        const d = await until("a refused attempt", async () => {
          const l = await strict.call("admin", "GET", `/v1/webhooks/${hook}/deliveries?status=failed`);
          return (l.json() as { deliveries: { last_error: string }[] }).deliveries[0];
        });
        expect(d.last_error).toMatch(/^refused: .*not a public address/);
      }
      expect(r.received).toHaveLength(0);
    } finally {
      await strict.close();
    }
  });
});
