import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import canonicalize from "canonicalize";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { generateSigner } from "../../src/domain/audit-log/note.js";
import type { AuditEvent } from "../../src/schemas/audit.js";
import { openTestApp, type TestApp } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";
import { leafHashOf, mth, openCheckpoint, path, proof } from "./rfc6962.js";

const b64 = (b: Buffer) => b.toString("base64");

describe.each(ENGINES)("verifiable audit log on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
  });
  afterAll(() => t.close());

  const text = async (url: string, role: "auditor" | null = "auditor") => {
    const res = await t.call(role, "GET", url);
    expect(res.statusCode, res.body).toBe(200);
    return res.body;
  };
  const json = async (url: string) => JSON.parse(await text(url));
  const key = () => text("/v1/audit/log/key", null);
  /** Waits until the newest checkpoint covers `size` entries; returns it opened. */
  const checkpointAtLeast = async (size: number) => {
    let note = "";
    await expect
      .poll(
        async () => {
          const res = await t.call("auditor", "GET", "/v1/audit/log/checkpoint");
          note = res.body;
          return res.statusCode === 200 ? Number(res.body.split("\n")[1]) : 0;
        },
        { timeout: 15_000, interval: 50 },
      )
      .toBeGreaterThanOrEqual(size);
    return { note, ...openCheckpoint(note, await key()) };
  };
  const allEvents = async (): Promise<AuditEvent[]> => {
    const out: AuditEvent[] = [];
    let cursor: string | null = null;
    do {
      const page: { events: AuditEvent[]; next_cursor: string | null } = await json(
        `/v1/audit?limit=1000${cursor ? `&cursor=${cursor}` : ""}`,
      );
      out.push(...page.events);
      cursor = page.next_cursor;
    } while (cursor);
    return out;
  };
  const leavesOf = async (start: number, end: number) => {
    const res = await t.call("auditor", "GET", `/v1/audit/log/entries?start=${start}&end=${end}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/x-ndjson/);
    expect(res.body.endsWith("\n")).toBe(true);
    return res.rawPayload
      .toString("utf8")
      .slice(0, -1)
      .split("\n")
      .map((l) => Buffer.from(l, "utf8"));
  };

  it("sequences every event densely; leaves, checkpoints and proofs check with an independent verifier", async () => {
    const before = (await allEvents()).length;
    const posted = await t.call("service", "POST", "/v1/audit/batch", {
      events: Array.from({ length: 300 }, (_, i) => ({ action: "log.test", target_id: `r${i}`, metadata: { i } })),
    });
    expect(posted.statusCode).toBe(201);
    expect(posted.json().events.every((e: AuditEvent) => e.log_index === null)).toBe(true);
    for (let i = 0; i < 3; i++) expect((await t.call("service", "POST", "/v1/audit", { action: "log.single" })).statusCode).toBe(201);
    const total = before + 303;

    const cp = await checkpointAtLeast(total);
    expect(cp.origin).toMatch(/^tenant-registry\/[0-9a-f]{32}$/);
    expect((await key()).startsWith(`${cp.origin}+`)).toBe(true);

    // Every event the checkpoint covers has its log_index: 0 … size−1, dense, in id order.
    const events = await allEvents();
    expect(events.length).toBeGreaterThanOrEqual(total);
    const sequenced = events.filter((e) => e.log_index !== null && e.log_index < cp.size);
    expect(sequenced.map((e) => e.log_index)).toEqual(Array.from({ length: cp.size }, (_, i) => i));
    expect(events.slice(0, cp.size)).toEqual(sequenced);

    const leaves = await leavesOf(0, cp.size);
    expect(leaves).toHaveLength(cp.size);
    for (const [i, leaf] of leaves.entries()) {
      const e = sequenced[i] as AuditEvent;
      const { log_index: _, ...fields } = e;
      expect(JSON.parse(leaf.toString("utf8"))).toEqual(fields);
    }
    const hashes = leaves.map(leafHashOf);
    expect(b64(mth(hashes))).toBe(b64(cp.root));

    for (const index of [0, 1, 255, 256, 257, cp.size - 1]) {
      const p = await json(`/v1/audit/log/proof?index=${index}`);
      expect(p).toEqual({ index, size: cp.size, leaf_hash: b64(hashes[index] as Buffer), hashes: path(index, hashes).map(b64) });
    }
    const smaller = Math.max(1, cp.size - 40);
    const p = await json(`/v1/audit/log/proof?index=0&size=${smaller}`);
    expect(p.hashes).toEqual(path(0, hashes.slice(0, smaller)).map(b64));
    for (const from of [1, 2, 3, 255, 256, smaller, cp.size]) {
      const c = await json(`/v1/audit/log/consistency?from=${from}&to=${cp.size}`);
      expect(c).toEqual({ from, to: cp.size, hashes: proof(from, hashes).map(b64) });
    }

    // Every checkpoint is kept: each size signed is served as signed then; other sizes are 404.
    const kept = await t.store.db.query<{ size: string }>("SELECT size::text AS size FROM audit_log_checkpoints ORDER BY size");
    expect(kept.map((r) => Number(r.size))).toContain(cp.size);
    for (const { size } of kept) {
      const old = openCheckpoint(await text(`/v1/audit/log/checkpoint?size=${size}`), await key());
      expect([old.size, b64(old.root)]).toEqual([Number(size), b64(mth(hashes.slice(0, Number(size))))]);
    }
    const unsigned = Array.from({ length: cp.size }, (_, i) => i + 1).find((n) => !kept.some((r) => Number(r.size) === n));
    if (unsigned) expect((await t.call("auditor", "GET", `/v1/audit/log/checkpoint?size=${unsigned}`)).statusCode).toBe(404);
  }, 60_000);

  it("serves the largest checkpoint as the newest when the size gains a digit (999 then 1000)", async () => {
    const newest = async () =>
      Number((await t.store.db.query<{ n: string }>("SELECT max(size)::text AS n FROM audit_log_checkpoints"))[0]?.n ?? 0);
    // Sequence everything posted so far, then fill the log up to a size of all nines.
    await checkpointAtLeast((await allEvents()).length);
    const size = await newest();
    const nines = 10 ** String(size + 1).length - 1;
    const fill = nines - size;
    for (let i = 0; i < fill; i += 1000) {
      const n = Math.min(1000, fill - i);
      const res = await t.call("service", "POST", "/v1/audit/batch", { events: Array.from({ length: n }, () => ({ action: "log.fill" })) });
      expect(res.statusCode).toBe(201);
    }
    await expect.poll(newest, { timeout: 15_000, interval: 50 }).toBe(nines);
    expect((await t.call("service", "POST", "/v1/audit", { action: "log.digit" })).statusCode).toBe(201);
    await expect.poll(newest, { timeout: 15_000, interval: 50 }).toBe(nines + 1);
    // Sizes compared as numbers, not as text ("999" > "1000").
    const cp = await checkpointAtLeast(nines + 1);
    expect(cp.size).toBe(nines + 1);
    expect((await json(`/v1/audit/log/proof?index=${nines}`)).size).toBe(nines + 1);

    // Entries across segments whose starts gain a digit (256 … 1280) come in log order.
    const more = Math.max(0, 1300 - (nines + 1));
    for (let i = 0; i < more; i += 1000) {
      const n = Math.min(1000, more - i);
      expect(
        (await t.call("service", "POST", "/v1/audit/batch", { events: Array.from({ length: n }, () => ({ action: "log.fill" })) }))
          .statusCode,
      ).toBe(201);
    }
    const big = await checkpointAtLeast(nines + 1 + more);
    const sequenced = (await allEvents()).filter((e) => e.log_index !== null && e.log_index < big.size);
    const start = Math.max(0, big.size - 10_000);
    const ids = (await leavesOf(start, big.size)).map((l) => JSON.parse(l.toString("utf8")).id);
    expect(ids).toEqual(sequenced.slice(start).map((e) => e.id));
    expect(b64(mth((await leavesOf(0, big.size)).map(leafHashOf)))).toBe(b64(big.root));
  }, 60_000);

  it("leaves are RFC 8785 bytes of what the API returns, through jsonb, on this engine", async () => {
    const [row] = await t.store.db.query<{ id: string }>(
      `INSERT INTO audit_events (actor_id, action, metadata) VALUES ('tester', 'log.canonical', $1::jsonb) RETURNING id::text AS id`,
      [
        '{"z": 1, "big": 1e21, "neg": -0, "tenth": 0.1, "huge": 123456789012345678901234567890, "safe": 9007199254740993,' +
          ' "exp": 1E-7, "s": "\\u00e9\\ud83d\\ude00\\u2028\\"\\\\\\n\\t\\u0001/", "\\u00e9": [true, null, {"b": 2, "a": 1}], "a": {}}',
      ],
    );
    const id = (row as { id: string }).id;
    let event: AuditEvent | undefined;
    await expect
      .poll(
        async () => {
          event = (await json(`/v1/audit?action=log.canonical`)).events.find((e: AuditEvent) => e.id === id);
          return event?.log_index ?? null;
        },
        { timeout: 10_000, interval: 50 },
      )
      .not.toBeNull();
    const e = event as AuditEvent;
    const index = e.log_index as number;
    await checkpointAtLeast(index + 1);
    const [leaf] = await leavesOf(index, index + 1);
    const expected =
      `{"action":"log.canonical","actor_id":"tester","created_at":"${e.created_at}","id":"${id}",` +
      `"metadata":{"a":{},"big":1e+21,"exp":1e-7,"huge":1.2345678901234568e+29,"neg":0,` +
      `"s":"é😀\u2028\\"\\\\\\n\\t\\u0001/","safe":9007199254740992,"tenth":0.1,"z":1,"é":[true,null,{"a":1,"b":2}]},` +
      `"occurred_at":"${e.occurred_at}","product":null,"target_id":null,"target_type":null,"tenant_id":null}`;
    expect((leaf as Buffer).toString("utf8")).toBe(expected);
    // The API's own JSON of the metadata holds the same values.
    expect(JSON.parse(expected).metadata).toEqual(e.metadata);
    const p = await json(`/v1/audit/log/proof?index=${index}`);
    expect(p.leaf_hash).toBe(b64(leafHashOf(Buffer.from(expected, "utf8"))));
  });

  it("leaves carry the times the API prints, odd ones included (microseconds, early years, offsets)", async () => {
    const times = ["0099-03-04 05:06:07.5+00", "2026-01-02 03:04:05.123456+00", "2026-06-01 12:00:00+02", "1999-12-31 23:59:59.9+00"];
    const rows = await t.store.db.query<{ id: string }>(
      `INSERT INTO audit_events (actor_id, action, occurred_at)
       SELECT 'tester', 'log.times', t::timestamptz FROM unnest($1::text[]) AS t RETURNING id::text AS id`,
      [times],
    );
    const ids = rows.map((r) => r.id);
    let events: AuditEvent[] = [];
    await expect
      .poll(
        async () => {
          events = (await json("/v1/audit?action=log.times&limit=100")).events.filter((e: AuditEvent) => ids.includes(e.id));
          return events.length === times.length && events.every((e) => e.log_index !== null);
        },
        { timeout: 10_000, interval: 50 },
      )
      .toBe(true);
    await checkpointAtLeast(Math.max(...events.map((e) => e.log_index as number)) + 1);
    for (const e of events) {
      const [leaf] = await leavesOf(e.log_index as number, (e.log_index as number) + 1);
      const { log_index: _, ...fields } = e;
      expect((leaf as Buffer).toString("utf8")).toBe(canonicalize(fields));
    }
    expect(events.map((e) => e.occurred_at)).toContain("0099-03-04T05:06:07.500Z");
  });

  it("refuses bad ranges with 400 and unknown checkpoints with 404; the key needs no token, the rest a reader", async () => {
    const { size } = await checkpointAtLeast(1);
    const bad = [
      `/v1/audit/log/proof?index=${size}&size=${size}`,
      `/v1/audit/log/proof?index=0&size=${size + 1}`,
      "/v1/audit/log/proof?index=-1",
      "/v1/audit/log/proof?index=x",
      "/v1/audit/log/proof",
      "/v1/audit/log/proof?index=0&extra=1",
      `/v1/audit/log/consistency?from=0&to=${size}`,
      `/v1/audit/log/consistency?from=2&to=1`,
      `/v1/audit/log/consistency?from=1&to=${size + 1}`,
      `/v1/audit/log/entries?start=0&end=0`,
      `/v1/audit/log/entries?start=0&end=${size + 1}`,
      "/v1/audit/log/entries?start=0&end=10001",
      "/v1/audit/log/checkpoint?size=0",
    ];
    for (const url of bad) {
      const res = await t.call("auditor", "GET", url);
      expect([url, res.statusCode, res.headers["content-type"]]).toEqual([url, 400, "application/problem+json; charset=utf-8"]);
    }
    expect((await t.call("auditor", "GET", `/v1/audit/log/checkpoint?size=${size + 1000}`)).statusCode).toBe(404);
    expect((await t.call(null, "GET", "/v1/audit/log/checkpoint")).statusCode).toBe(401);
    expect((await t.call("service", "GET", "/v1/audit/log/proof?index=0")).statusCode).toBe(403);
    expect((await t.call("admin", "GET", "/v1/audit/log/consistency?from=1&to=1")).json()).toEqual({ from: 1, to: 1, hashes: [] });
    const k = await t.call(null, "GET", "/v1/audit/log/key");
    expect([k.statusCode, k.headers["content-type"]]).toEqual([200, "text/plain; charset=utf-8"]);
    expect(k.body).toMatch(/^tenant-registry\/[0-9a-f]{32}\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}\n$/);
  });

  it("keeps key and origin across restarts; takes a key from AUDIT_LOG_KEY_FILE; refuses one that contradicts the log", async () => {
    const first = await key();
    const origin = first.split("+")[0] as string;
    const again = await openTestApp(engine, t.store, { AUDIT_LOG_SEQUENCER: "off" });
    try {
      expect((await again.call(null, "GET", "/v1/audit/log/key")).body).toBe(first);
    } finally {
      await again.app.close();
    }

    const dir = mkdtempSync(join(tmpdir(), "audit-log-key-"));
    const own = generateSigner(origin);
    writeFileSync(join(dir, "signer"), `${own.text}\n`);
    const fromFile = await openTestApp(engine, t.store, { AUDIT_LOG_KEY_FILE: join(dir, "signer"), AUDIT_LOG_SEQUENCER: "off" });
    try {
      const served = (await fromFile.call(null, "GET", "/v1/audit/log/key")).body;
      expect(served).not.toBe(first);
      expect(served.startsWith(`${origin}+${own.signer.id.toString("hex")}+`)).toBe(true);
    } finally {
      await fromFile.app.close();
    }

    writeFileSync(join(dir, "other"), generateSigner("someone-else").text);
    await expect(openTestApp(engine, t.store, { AUDIT_LOG_KEY_FILE: join(dir, "other") })).rejects.toThrow(/origin/);
    writeFileSync(join(dir, "junk"), "not a key");
    await expect(openTestApp(engine, t.store, { AUDIT_LOG_KEY_FILE: join(dir, "junk") })).rejects.toThrow(/AUDIT_LOG_KEY_FILE/);
    await expect(openTestApp(engine, t.store, { AUDIT_LOG_ORIGIN: "example.com/log" })).rejects.toThrow(/AUDIT_LOG_ORIGIN/);
    for (const bad of ["has space", "a+b", "tab\there"]) {
      expect(() => loadConfig({ AUDIT_LOG_ORIGIN: bad })).toThrow(/AUDIT_LOG_ORIGIN/);
    }
  }, 60_000);
});
