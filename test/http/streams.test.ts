import type { AddressInfo } from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeCursor } from "../../src/http/pagination.js";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";
import { openSse, type SseMessage } from "../helpers/sse.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const audits = (ms: SseMessage[]) => ms.filter((m) => m.event === "audit");
const ids = (ms: SseMessage[]) => audits(ms).map((m) => m.id);

describe.each(ENGINES)("event streams (%s)", (engine) => {
  let t: TestApp;
  let base: string;
  const bearer = (role: "admin" | "service" | "auditor") => ({ authorization: `Bearer ${t.tokens[role]}` });

  beforeAll(async () => {
    t = await openTestApp(engine);
    await t.app.listen({ port: 0, host: "127.0.0.1" });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  afterAll(() => t?.close());

  const append = async (action: string, extra: Record<string, unknown> = {}) => {
    const res = await t.call("service", "POST", "/v1/audit", { action, ...extra });
    expect(res.statusCode).toBe(201);
    return (res.json() as { id: string }).id;
  };

  it("sends headers at once, then only events after the head; resumes with Last-Event-ID exactly where it left", async () => {
    await append("report.before");
    const s = await openSse(`${base}/v1/audit/stream?action=report.streamed`, bearer("auditor"));
    expect(s.status).toBe(200);
    expect(s.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const first = [await append("report.streamed"), await append("report.streamed")];
    await s.waitFor((m) => audits(m).length === 2);
    expect(ids(s.messages)).toEqual(first);
    const event = JSON.parse(audits(s.messages)[0]?.data ?? "{}");
    expect(event).toMatchObject({ id: first[0], action: "report.streamed", actor_id: "products" });
    s.close();

    const missed = [];
    for (let i = 0; i < 4; i++) missed.push(await append("report.streamed"));
    const resumed = await openSse(`${base}/v1/audit/stream?action=report.streamed`, {
      ...bearer("auditor"),
      "last-event-id": first[1] as string,
    });
    await resumed.waitFor((m) => audits(m).length >= 4);
    await sleep(300);
    expect(ids(resumed.messages)).toEqual(missed);
    resumed.close();
  });

  it("resumes from a list page's cursor", async () => {
    const tenant = (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Cursor" })).json() as { id: string };
    const a = await append("report.paged", { tenant_id: tenant.id });
    const b = await append("report.paged", { tenant_id: tenant.id });
    const page = (await t.call("admin", "GET", `/v1/audit?tenant_id=${tenant.id}&action=report.paged&limit=1`)).json() as {
      next_cursor: string;
    };
    const s = await openSse(
      `${base}/v1/audit/stream?tenant_id=${tenant.id}&cursor=${encodeURIComponent(page.next_cursor)}`,
      bearer("admin"),
    );
    const c = await append("report.paged", { tenant_id: tenant.id });
    await s.waitFor((m) => audits(m).length >= 2);
    await sleep(200);
    expect(ids(s.messages)).toEqual([b, c]);
    expect(ids(s.messages)).not.toContain(a);
    s.close();
  });

  it("applies the filters", async () => {
    const x = (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "X" })).json() as { id: string };
    const y = (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Y" })).json() as { id: string };
    const s = await openSse(`${base}/v1/audit/stream?tenant_id=${x.id}&actor_id=alice`, bearer("auditor"));
    await append("report.filtered", { tenant_id: y.id, actor_id: "alice" });
    await append("report.filtered", { tenant_id: x.id, actor_id: "bob" });
    const want = await append("report.filtered", { tenant_id: x.id, actor_id: "alice" });
    await s.waitFor((m) => audits(m).length >= 1);
    await sleep(300);
    expect(ids(s.messages)).toEqual([want]);
    s.close();
  });

  it("refuses bad input and the wrong roles with problems", async () => {
    const bad = await fetch(`${base}/v1/audit/stream`, { headers: { ...bearer("admin"), "last-event-id": "x1" } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toMatch(/problem\+json/);
    expect((await fetch(`${base}/v1/audit/stream?since=2020-01-01T00:00:00Z`, { headers: bearer("admin") })).status).toBe(400);
    expect((await fetch(`${base}/v1/audit/stream?limit=5`, { headers: bearer("admin") })).status).toBe(400);
    expect((await fetch(`${base}/v1/audit/stream`, { headers: bearer("service") })).status).toBe(403);
    expect((await fetch(`${base}/v1/internal/changes`, { headers: bearer("auditor") })).status).toBe(403);
    expect((await fetch(`${base}/v1/internal/changes`)).status).toBe(401);
  });

  it("refuses a Last-Event-ID or cursor that could not have been issued with a 400, and waits for a large id not issued yet", async () => {
    for (const id of ["9999999999999999999", "9223372036854775808", "-1", "1e3", "0x10", "12345678901234567890"]) {
      const res = await fetch(`${base}/v1/audit/stream`, { headers: { ...bearer("auditor"), "last-event-id": id } });
      expect(res.status, id).toBe(400);
      expect(res.headers.get("content-type")).toMatch(/problem\+json/);
    }
    // Checksummed like ours, but past anything this registry has handed out; and one from another list.
    for (const cursor of [encodeCursor("audit", ["9223372036854775807"]), encodeCursor("tenants", ["1"])]) {
      const res = await fetch(`${base}/v1/audit/stream?cursor=${encodeURIComponent(cursor)}`, { headers: bearer("auditor") });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { errors: { field: string }[] }).errors[0]?.field).toBe("querystring/cursor");
    }
    const waiting = await openSse(`${base}/v1/audit/stream?action=report.future`, {
      ...bearer("auditor"),
      "last-event-id": "9223372036854775807",
    });
    expect(waiting.status).toBe(200);
    await append("report.future");
    await sleep(500);
    expect(audits(waiting.messages)).toEqual([]);
    waiting.close();
  });

  it("carries invalidations and heartbeats on /v1/internal/changes", async () => {
    const tenant = (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Changes" })).json() as { id: string };
    const key = (await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenant.id, name: "k" })).json() as { id: string };
    const s = await openSse(`${base}/v1/internal/changes`, bearer("service"));
    expect(s.status).toBe(200);
    await s.waitFor((m) => m.filter((x) => x.event === "heartbeat").length >= 2, 3000);
    expect(s.messages.find((x) => x.event === "heartbeat")?.data).toBe("{}");
    expect((await t.call("admin", "DELETE", `/v1/api-keys/${key.id}`)).statusCode).toBe(204);
    await s.waitFor((m) => m.some((x) => x.event === "invalidate" && JSON.parse(x.data).key_id === key.id));
    expect((await t.call("admin", "POST", `/v1/tenants/${tenant.id}/cancel`)).statusCode).toBe(200);
    await s.waitFor((m) => m.some((x) => x.event === "invalidate" && JSON.parse(x.data).tenant_id === tenant.id));
    s.close();
  });

  it.skipIf(engine !== "postgres")("never skips an event that commits late", async () => {
    const s = await openSse(`${base}/v1/audit/stream?action=report.late`, bearer("auditor"));
    const slow = new pg.Client({ connectionString: t.store.url });
    await slow.connect();
    try {
      await slow.query("BEGIN");
      const [held] = (
        await slow.query<{ id: string }>(
          "INSERT INTO audit_events (actor_id, action, metadata) VALUES ('slow', 'report.late', '{}') RETURNING id::text AS id",
        )
      ).rows;
      const after = await append("report.late");
      expect(BigInt(after)).toBeGreaterThan(BigInt(held?.id ?? "0"));
      // The later event has committed, but the stream holds it back while the earlier id is in flight.
      await sleep(700);
      expect(ids(s.messages)).toEqual([]);
      await slow.query("COMMIT");
      await s.waitFor((m) => audits(m).length >= 2);
      await sleep(200);
      expect(ids(s.messages)).toEqual([held?.id, after]);
    } finally {
      await slow.end();
      s.close();
    }
  });

  it("ends open streams when the app closes", async () => {
    const t2 = await openTestApp(engine, t.store);
    await t2.app.listen({ port: 0, host: "127.0.0.1" });
    const url = `http://127.0.0.1:${(t2.app.server.address() as AddressInfo).port}`;
    const a = await openSse(`${url}/v1/audit/stream`, { authorization: `Bearer ${t2.tokens.admin}` });
    const c = await openSse(`${url}/v1/internal/changes`, { authorization: `Bearer ${t2.tokens.service}` });
    const started = Date.now();
    await t2.close();
    await Promise.all([a.ended, c.ended]);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
