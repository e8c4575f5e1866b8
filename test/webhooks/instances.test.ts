import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ENGINES, openTestDb, type TestDb } from "../helpers/db.js";
import { type Receiver, startReceiver } from "../helpers/receiver.js";

const SETTINGS = {
  WEBHOOK_ALLOW_PRIVATE: "true",
  WEBHOOK_RETRY_BASE_MS: "50",
  WEBHOOK_RETRY_MAX_MS: "200",
  WEBHOOK_POLL_MS: "50",
  WEBHOOK_TIMEOUT_MS: "3000",
};

const attemptsOf = async (t: TestApp): Promise<number> => {
  const text = (await t.call("admin", "GET", "/metrics")).body;
  return [...text.matchAll(/^tenant_registry_webhook_attempts_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
};

describe.skipIf(!ENGINES.includes("postgres"))("webhook delivery with two instances on one PostgreSQL", () => {
  let store: TestDb;
  let a: TestApp;
  let b: TestApp;
  let r: Receiver;

  beforeAll(async () => {
    store = await openTestDb("postgres");
    a = await openTestApp("postgres", store, SETTINGS);
    b = await openTestApp("postgres", { ...store, db: await store.connect() }, SETTINGS);
    r = await startReceiver();
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await r?.close();
    await store?.close();
  });

  it("shares the work and never attempts one delivery twice at once", async () => {
    const spans = new Map<string, { start: number; end: number }[]>();
    let n = 0;
    r.answer = async (got) => {
      const id = String(got.headers["webhook-id"]);
      const span = { start: Date.now(), end: Number.POSITIVE_INFINITY };
      spans.set(id, [...(spans.get(id) ?? []), span]);
      await new Promise((res) => setTimeout(res, 20 + (n++ % 5) * 10));
      span.end = Date.now();
      // Every third message fails once, so retries are claimed by whichever instance is free.
      return (spans.get(id)?.length ?? 0) === 1 && n % 3 === 0 ? 500 : 200;
    };
    const created = await a.call("admin", "POST", "/v1/webhooks", { url: r.url, events: ["tenant.created"] });
    const hook = created.json() as { id: string; secret: string };
    const count = 40;
    for (let i = 0; i < count; i++) {
      const via = i % 2 === 0 ? a : b;
      expect((await via.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: `Pair ${i}` })).statusCode).toBe(201);
    }
    const end = Date.now() + 20_000;
    for (;;) {
      const res = await a.call("admin", "GET", `/v1/webhooks/${hook.id}/deliveries?status=succeeded&limit=200`);
      if ((res.json() as { deliveries: unknown[] }).deliveries.length === count) break;
      if (Date.now() > end) throw new Error("not every delivery succeeded");
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(spans.size).toBe(count);
    for (const [id, list] of spans) {
      const sorted = [...list].sort((x, y) => x.start - y.start);
      for (let i = 1; i < sorted.length; i++) {
        expect(sorted[i]?.start, `${id}: attempt ${i + 1} began before attempt ${i} ended`).toBeGreaterThanOrEqual(sorted[i - 1]?.end ?? 0);
      }
    }
    // Every request was signed properly, whichever instance sent it.
    expect(r.verifyAll(hook.secret)).toHaveLength(r.received.length);
    // Both instances took part.
    expect(await attemptsOf(a)).toBeGreaterThan(0);
    expect(await attemptsOf(b)).toBeGreaterThan(0);
    expect((await attemptsOf(a)) + (await attemptsOf(b))).toBe(r.received.length);
  });
});
