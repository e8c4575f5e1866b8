import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeCursor } from "../../src/http/pagination.js";
import type { AuditEvent } from "../../src/schemas/audit.js";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";

/** The event as the API serves it: the schema's own type. */
type Event = AuditEvent;

const MS_ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe.each(ENGINES)("audit API on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
    // The catalog is another module's; products are plain rows here.
    await t.store.db.query("INSERT INTO products (key, name) VALUES ('pay', 'Payments'), ('crm', 'CRM') ON CONFLICT DO NOTHING");
  });
  afterAll(() => t.close());

  const tenant = async (): Promise<string> => {
    const res = await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug(), name: "Audited" });
    expect(res.statusCode).toBe(201);
    return res.json().id;
  };
  const post = async (body: Record<string, unknown>, headers?: Record<string, string>): Promise<Event> => {
    const res = await t.call("service", "POST", "/v1/audit", body, headers);
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  };
  const batch = async (events: Record<string, unknown>[]): Promise<Event[]> => {
    const res = await t.call("service", "POST", "/v1/audit/batch", { events });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().events;
  };
  const list = async (qs: string, role: "admin" | "auditor" = "auditor") => {
    const res = await t.call(role, "GET", `/v1/audit?${qs}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { events: Event[]; next_cursor: string | null };
  };
  /** Every page, following next_cursor. */
  const all = async (qs: string): Promise<Event[]> => {
    const out: Event[] = [];
    let cursor: string | null = null;
    do {
      const body = await list(`${qs}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      out.push(...body.events);
      cursor = body.next_cursor;
    } while (cursor);
    return out;
  };
  const count = async (tenantId: string) =>
    (await t.store.db.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_events WHERE tenant_id = $1", [tenantId]))[0]?.n;

  describe("happy", () => {
    it("appends a minimal event: the principal acts, occurred_at defaults to created_at", async () => {
      const e = await post({ action: "report.exported" });
      expect(e).toMatchObject({
        tenant_id: null,
        product: null,
        actor_id: "products",
        action: "report.exported",
        target_type: null,
        target_id: null,
        metadata: {},
      });
      expect(e.id).toMatch(/^[1-9]\d*$/);
      expect(e.created_at).toMatch(MS_ISO);
      expect(e.occurred_at).toBe(e.created_at);
      expect(Math.abs(Date.parse(e.created_at) - Date.now())).toBeLessThan(60_000);
    });

    it("stores every field; the event's own actor_id acts and metadata.principal records the caller", async () => {
      const tenantId = await tenant();
      const e = await post({
        action: "invoice.paid",
        tenant_id: tenantId,
        product: "pay",
        actor_id: "jane@customer.example",
        target_type: "invoice",
        target_id: "inv_42",
        metadata: { amount: 1200, tags: ["a", "b"], nested: { ok: true } },
        occurred_at: "2026-01-02T03:04:05.678+02:00",
      });
      expect(e).toMatchObject({
        tenant_id: tenantId,
        product: "pay",
        actor_id: "jane@customer.example",
        target_type: "invoice",
        target_id: "inv_42",
        metadata: { amount: 1200, tags: ["a", "b"], nested: { ok: true }, principal: "products" },
        occurred_at: "2026-01-02T01:04:05.678Z",
      });
      const [stored] = (await list(`tenant_id=${tenantId}&action=invoice.paid`)).events;
      // Just stored, not sequenced yet: log_index is null in the answer, and set once the log takes it.
      expect(e.log_index).toBeNull();
      expect({ ...stored, log_index: null }).toEqual(e);
    });

    it("X-Actor-Id acts when the event names no actor; a caller cannot write metadata.principal", async () => {
      const viaHeader = await post({ action: "login.succeeded" }, { "x-actor-id": "rep@example.com" });
      expect(viaHeader).toMatchObject({ actor_id: "rep@example.com", metadata: { principal: "products" } });
      const own = await post({ action: "login.succeeded", actor_id: "u1" }, { "x-actor-id": "rep@example.com" });
      expect(own).toMatchObject({ actor_id: "u1", metadata: { principal: "products" } });
      const spoof = await post({ action: "login.succeeded", metadata: { principal: "root", ip: "10.0.0.1" } });
      expect(spoof).toMatchObject({ actor_id: "products", metadata: { principal: "products", ip: "10.0.0.1" } });
      // An event that names its own actor always records the caller, even when the names coincide.
      const self = await post({ action: "login.succeeded", actor_id: "products" });
      expect(self.metadata).toEqual({ principal: "products" });
      const none = await post({ action: "login.succeeded" });
      expect(none.metadata).toEqual({});
    });

    it("admin may append too", async () => {
      const res = await t.call("admin", "POST", "/v1/audit", { action: "ops.note" });
      expect([res.statusCode, res.json().actor_id]).toEqual([201, "admin"]);
    });

    it("a batch is stored in the order given, with ascending ids", async () => {
      const tenantId = await tenant();
      const events = await batch(
        Array.from({ length: 5 }, (_, i) => ({
          action: "sync.row",
          tenant_id: tenantId,
          target_id: `row-${i}`,
          product: i % 2 ? "crm" : null,
        })),
      );
      expect(events.map((e) => e.target_id)).toEqual(["row-0", "row-1", "row-2", "row-3", "row-4"]);
      const ids = events.map((e) => BigInt(e.id));
      for (let i = 1; i < ids.length; i++) expect(ids[i] as bigint).toBeGreaterThan(ids[i - 1] as bigint);
      expect((await list(`tenant_id=${tenantId}&action=sync.row`)).events.map((x) => ({ ...x, log_index: null }))).toEqual(events);
    });

    it("a batch over 1 MiB (under 16 MiB) is accepted on the batch route only", async () => {
      const metadata = { blob: "x".repeat(15_000) };
      const events = Array.from({ length: 100 }, () => ({ action: "bulk.item", metadata }));
      expect(JSON.stringify({ events }).length).toBeGreaterThan(1024 * 1024);
      expect((await t.call("service", "POST", "/v1/audit/batch", { events })).statusCode).toBe(201);
    });

    it("the registry's own changes are in the trail, ascending, with the acting principal", async () => {
      const res = await t.call(
        "admin",
        "POST",
        "/v1/tenants",
        { slug: uniqueSlug(), name: "Traced" },
        { "x-actor-id": "sales@example.com" },
      );
      const id = res.json().id;
      await t.call("admin", "POST", `/v1/tenants/${id}/activate`);
      await post({ action: "product.used", tenant_id: id });
      const events = (await list(`tenant_id=${id}`, "admin")).events;
      expect(events.map((e) => [e.action, e.actor_id])).toEqual([
        ["tenant.created", "sales@example.com"],
        ["tenant.activated", "admin"],
        ["product.used", "products"],
      ]);
      expect(events[0]?.metadata).toMatchObject({ principal: "admin" });
    });

    it("filters by tenant, product, actor and action, alone and together", async () => {
      const [a, b] = [await tenant(), await tenant()];
      const made = await batch([
        { action: "f.one", tenant_id: a, product: "pay", actor_id: "x" },
        { action: "f.two", tenant_id: a, product: "crm", actor_id: "y" },
        { action: "f.one", tenant_id: b, product: "pay", actor_id: "y" },
        { action: "f.two", tenant_id: b, actor_id: "x" },
        { action: "f.one", tenant_id: a, actor_id: "y" },
      ]);
      const ids = (qs: string) => list(qs).then((r) => r.events.map((e) => made.findIndex((m) => m.id === e.id)));
      expect(await ids(`tenant_id=${a}`)).toEqual([-1, 0, 1, 4]); // -1: tenant.created
      expect(await ids(`tenant_id=${a}&product=pay`)).toEqual([0]);
      expect(await ids(`tenant_id=${b}&actor_id=y`)).toEqual([2]);
      expect(await ids(`tenant_id=${a}&action=f.one`)).toEqual([0, 4]);
      expect(await ids(`tenant_id=${b}&action=f.two&actor_id=x`)).toEqual([3]);
      const byAction = (await list("action=f.two&limit=1000")).events.map((e) => e.id);
      expect(byAction).toEqual(expect.arrayContaining([made[1]?.id, made[3]?.id]));
      expect((await list("actor_id=y&product=pay&limit=1000")).events.map((e) => e.id)).toContain(made[2]?.id);
      expect((await list(`tenant_id=${a}&product=nothing`)).events).toEqual([]);
      expect((await list("tenant_id=6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10")).events).toEqual([]);
    });

    it("pages ascending with an opaque cursor; default limit 100; next_cursor null on the last page", async () => {
      const tenantId = await tenant();
      const made = await batch(Array.from({ length: 230 }, (_, i) => ({ action: "page.row", tenant_id: tenantId, target_id: String(i) })));
      const first = await list(`tenant_id=${tenantId}&action=page.row`);
      expect(first.events).toHaveLength(100);
      expect(first.next_cursor).toEqual(expect.any(String));
      expect((await all(`tenant_id=${tenantId}&action=page.row&limit=7`)).map((e) => e.id)).toEqual(made.map((e) => e.id));
      const big = await list(`tenant_id=${tenantId}&action=page.row&limit=1000`);
      expect([big.events.length, big.next_cursor]).toEqual([230, null]);
      const exact = await list(`tenant_id=${tenantId}&action=page.row&limit=230`);
      expect([exact.events.length, exact.next_cursor]).toEqual([230, null]);
    });

    it("ids ascend as numbers, also across a power of ten", async () => {
      const tenantId = await tenant();
      const [{ last }] = (await t.store.db.query<{ last: string }>(
        "SELECT coalesce(pg_sequence_last_value('audit_events_id_seq'), 0)::text AS last",
      )) as [{ last: string }];
      const next = 10n ** BigInt(last.length);
      await t.store.db.query("SELECT setval('audit_events_id_seq', $1::bigint)", [String(next - 4n)]);
      const made = await batch(Array.from({ length: 8 }, () => ({ action: "digits.row", tenant_id: tenantId })));
      expect(made.map((e) => e.id.length)).toEqual([last.length, last.length, last.length, ...Array(5).fill(last.length + 1)]);
      expect((await all(`tenant_id=${tenantId}&action=digits.row&limit=3`)).map((e) => e.id)).toEqual(made.map((e) => e.id));
    });

    it("a tailing reader polls with its last non-null cursor and gets what came since", async () => {
      const tenantId = await tenant();
      const made = await batch(Array.from({ length: 3 }, () => ({ action: "tail.row", tenant_id: tenantId })));
      const qs = `tenant_id=${tenantId}&action=tail.row&limit=2`;
      const p1 = await list(qs);
      const cursor = p1.next_cursor as string;
      const p2 = await list(`${qs}&cursor=${cursor}`);
      expect([p2.events.map((e) => e.id), p2.next_cursor]).toEqual([[made[2]?.id], null]);
      const later = await batch([{ action: "tail.row", tenant_id: tenantId }]);
      const p3 = await list(`${qs}&cursor=${cursor}`);
      expect(p3.events.map((e) => e.id)).toEqual([made[2]?.id, later[0]?.id]);
    });

    it("since is inclusive and until exclusive, on created_at", async () => {
      const tenantId = await tenant();
      const [first] = await batch([{ action: "time.row", tenant_id: tenantId }]);
      await new Promise((r) => setTimeout(r, 5));
      const [second] = await batch([{ action: "time.row", tenant_id: tenantId }]);
      const at = (first as Event).created_at;
      const qs = `tenant_id=${tenantId}&action=time.row`;
      const got = (extra: string) => list(`${qs}&${extra}`).then((r) => r.events.map((e) => e.id));
      expect(await got(`since=${at}`)).toEqual([first?.id, second?.id]);
      expect(await got(`until=${at}`)).toEqual([]);
      expect(await got(`since=${at}&until=${(second as Event).created_at}`)).toEqual([first?.id]);
      expect(await got(`since=${encodeURIComponent(new Date(Date.parse(at) + 1).toISOString())}`)).toEqual([second?.id]);
      const offset = at.replace("Z", "+00:00");
      expect(await got(`since=${encodeURIComponent(offset)}`)).toEqual([first?.id, second?.id]);
    });

    it("a metadata object of exactly 16 KiB is accepted", async () => {
      const metadata = { k: "é".repeat((16 * 1024 - 8) / 2) };
      expect(Buffer.byteLength(JSON.stringify(metadata))).toBe(16 * 1024);
      const e = await post({ action: "size.edge", metadata });
      expect(e.metadata).toEqual(metadata);
    });
  });

  describe("error", () => {
    const expect400 = async (body: unknown, field: string, url = "/v1/audit") => {
      const res = await t.call("service", "POST", url, body);
      expect(res.statusCode, res.body).toBe(400);
      const p = res.json();
      expect(p.code).toBe("invalid_input");
      expect(p.errors.map((e: { field: string }) => e.field)).toContain(field);
    };

    it.each([
      [{}, "body/action"],
      [{ action: "" }, "body/action"],
      [{ action: "Report" }, "body/action"],
      [{ action: "1st" }, "body/action"],
      [{ action: "a b" }, "body/action"],
      [{ action: `a${"b".repeat(100)}` }, "body/action"],
      [{ action: 7 }, "body/action"],
      [{ action: "ok", metadata: [] }, "body/metadata"],
      [{ action: "ok", metadata: "x" }, "body/metadata"],
      [{ action: "ok", metadata: null }, "body/metadata"],
      [{ action: "ok", occurred_at: "yesterday" }, "body/occurred_at"],
      [{ action: "ok", occurred_at: "2026-02-30T00:00:00Z" }, "body/occurred_at"],
      [{ action: "ok", tenant_id: "not-a-uuid" }, "body/tenant_id"],
      [{ action: "ok", actor_id: "" }, "body/actor_id"],
      [{ action: "ok", actor_id: " padded" }, "body/actor_id"],
      [{ action: "ok", actor_id: "tab\there" }, "body/actor_id"],
      [{ action: "ok", actor_id: "x".repeat(201) }, "body/actor_id"],
      [{ action: "ok", target_id: "" }, "body/target_id"],
      [{ action: "ok", id: "5" }, "body/id"],
      [{ action: "ok", created_at: "2026-01-01T00:00:00Z" }, "body/created_at"],
    ])("400 for %j naming %s", async (body, field) => {
      await expect400(body, field);
    });

    it("400 for metadata over 16 KiB serialized, naming the field; nothing stored", async () => {
      const tenantId = await tenant();
      const metadata = { k: "é".repeat((16 * 1024 - 8) / 2 + 1) };
      await expect400({ action: "size.over", tenant_id: tenantId, metadata }, "body/metadata");
      expect(await count(tenantId)).toBe(1);
    });

    it("400, not 500, for values PostgreSQL cannot store", async () => {
      for (const body of [
        { action: "nul.byte", metadata: { v: "a\u0000b" } },
        { action: "odd.time", occurred_at: "0000-01-01T00:00:00Z" },
        { action: "odd.time", occurred_at: "1900-01-01T00:00:00-23:59" },
      ]) {
        const res = await t.call("service", "POST", "/v1/audit", body);
        expect([res.statusCode, res.json().code], JSON.stringify(body)).toEqual([400, "invalid_input"]);
      }
      for (const qs of ["since=0000-01-01T00:00:00Z", `until=${encodeURIComponent("2026-01-01T00:00:00-23:59")}`]) {
        expect((await t.call("auditor", "GET", `/v1/audit?${qs}`)).statusCode, qs).toBe(400);
      }
    });

    it("404 for an unknown tenant or product", async () => {
      const a = await t.call("service", "POST", "/v1/audit", { action: "x.y", tenant_id: "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10" });
      expect([a.statusCode, a.json().code, a.json().detail]).toEqual([404, "not_found", "tenant not found"]);
      const b = await t.call("service", "POST", "/v1/audit", { action: "x.y", product: "no-such-product" });
      expect([b.statusCode, b.json().detail]).toEqual([404, "product not found"]);
    });

    it("413 for a single event over 1 MiB", async () => {
      const res = await t.call("service", "POST", "/v1/audit", { action: "big", metadata: { b: "x".repeat(1024 * 1024) } });
      expect([res.statusCode, res.json().code]).toEqual([413, "invalid_input"]);
    });

    it("a batch is all or nothing: one bad event stores none", async () => {
      const tenantId = await tenant();
      const good = { action: "b.ok", tenant_id: tenantId };
      await expect400({ events: [good, good, { action: "BAD" }] }, "body/events/2/action", "/v1/audit/batch");
      const res = await t.call("service", "POST", "/v1/audit/batch", {
        events: [good, { ...good, product: "nope" }, good, { ...good, tenant_id: "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10" }],
      });
      expect(res.statusCode).toBe(404);
      expect(res.json().errors).toEqual([
        { field: "body/events/1/product", message: "product not found" },
        { field: "body/events/3/tenant_id", message: "tenant not found" },
      ]);
      const meta = { k: "é".repeat((16 * 1024 - 8) / 2 + 1) };
      await expect400({ events: [good, { ...good, metadata: meta }] }, "body/events/1/metadata", "/v1/audit/batch");
      expect(await count(tenantId)).toBe(1);
    });

    it("a batch needs 1 to 1,000 events and stays under 16 MiB", async () => {
      await expect400({ events: [] }, "body/events", "/v1/audit/batch");
      await expect400({ events: Array.from({ length: 1001 }, () => ({ action: "n" })) }, "body/events", "/v1/audit/batch");
      await expect400({}, "body/events", "/v1/audit/batch");
      await expect400({ events: [{ action: "a" }], extra: 1 }, "body/extra", "/v1/audit/batch");
      const thousand = await t.call("service", "POST", "/v1/audit/batch", {
        events: Array.from({ length: 1000 }, () => ({ action: "n" })),
      });
      expect([thousand.statusCode, thousand.json().events.length]).toEqual([201, 1000]);
      const huge = { events: Array.from({ length: 1000 }, () => ({ action: "h", metadata: { b: "x".repeat(17_000) } })) };
      const res = await t.call("service", "POST", "/v1/audit/batch", huge);
      expect([res.statusCode, res.json().code]).toEqual([413, "invalid_input"]);
    });

    it("400 for bad list parameters, tampered and foreign cursors, and an empty time range", async () => {
      const tenantId = await tenant();
      await batch([
        { action: "c.row", tenant_id: tenantId },
        { action: "c.row", tenant_id: tenantId },
      ]);
      const good = (await list(`tenant_id=${tenantId}&limit=1`)).next_cursor as string;
      const [body, sum] = good.split(".");
      const flipped = `${body?.slice(0, -2)}${body?.slice(-2) === "AA" ? "AB" : "AA"}.${sum}`;
      const cases = [
        "limit=0",
        "limit=1001",
        "limit=x",
        "limit=1.5",
        "tenant_id=nope",
        "action=Bad",
        "since=today",
        "until=2026-13-01T00:00:00Z",
        "since=2026-01-02T00:00:00Z&until=2026-01-02T00:00:00Z",
        "since=2026-01-03T00:00:00Z&until=2026-01-02T00:00:00Z",
        "order=desc",
        "cursor=",
        "cursor=abc",
        `cursor=${flipped}`,
        `cursor=${encodeCursor("tenants", ["2026-01-01T00:00:00.000Z", tenantId])}`,
        `cursor=${encodeCursor("audit", ["12abc"])}`,
        `cursor=${encodeCursor("audit", [12])}`,
        `cursor=${encodeCursor("audit", ["99999999999999999999"])}`,
      ];
      for (const qs of cases) {
        const res = await t.call("auditor", "GET", `/v1/audit?${qs}`);
        expect(res.statusCode, qs).toBe(400);
        expect(res.json().code, qs).toBe("invalid_input");
      }
      expect((await t.call("auditor", "GET", `/v1/audit?limit=1000&cursor=${good}`)).statusCode).toBe(200);
    });
  });

  describe("concurrency", () => {
    it("concurrent appends all succeed with distinct ids, and a reader gets each once", async () => {
      const tenantId = await tenant();
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          i % 4 === 0
            ? t.call("service", "POST", "/v1/audit/batch", {
                events: [
                  { action: "race.b", tenant_id: tenantId },
                  { action: "race.b", tenant_id: tenantId },
                ],
              })
            : t.call("service", "POST", "/v1/audit", { action: "race.s", tenant_id: tenantId }),
        ),
      );
      for (const r of results) expect(r.statusCode).toBe(201);
      const written = results.flatMap((r) => (r.json().events ?? [r.json()]) as Event[]).map((e) => e.id);
      expect(new Set(written).size).toBe(50);
      const read = (await all(`tenant_id=${tenantId}&limit=9`)).map((e) => e.id).filter((id) => written.includes(id));
      expect(read).toEqual([...written].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)));
    });
  });
});
