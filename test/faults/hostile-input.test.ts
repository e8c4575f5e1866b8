import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";

/**
 * Generated hostile requests against every route: wrong types, deep (to
 * 10,000 levels) and huge JSON, control characters and NUL bytes, invalid UTF-8, injection
 * strings, oversized numbers, duplicate keys, wrong content types, odd
 * headers. No answer may be a 5xx; every 4xx is a problem document; a
 * refused request leaves the store exactly as it was.
 */

const NASTY_STRINGS = [
  "",
  "\u0000",
  "a\u0000b",
  "\u0007\u001b[31m",
  "'; DROP TABLE tenants; --",
  '" OR 1=1 --',
  "../../etc/passwd",
  "%00",
  "$" + "{jndi:ldap://x}",
  "<script>alert(1)</script>",
  "\ud800",
  "🦄".repeat(100),
  "x".repeat(5000),
  "__proto__",
  "constructor",
  "1e400",
  "-0",
  "NaN",
  "00000000-0000-0000-0000-000000000000",
  "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10",
  "bp_AAAAAAAAAAAAAAAAAAAAAA",
];

const nastyString = fc.oneof(fc.constantFrom(...NASTY_STRINGS), fc.string({ unit: "binary", maxLength: 40 }));
const nastyNumber = fc.constantFrom(0, -1, 1.5, 2 ** 53 + 1, 1e308, -1e308, Number.MAX_SAFE_INTEGER);
const leaf = fc.oneof(nastyString, nastyNumber, fc.boolean(), fc.constant(null));
const nastyValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    leaf,
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(nastyString, tie("value"), { maxKeys: 4 }),
  ),
})).value;

/** Field names the routes know, so generated bodies get past "unknown field" often enough to reach deeper checks. */
const KNOWN_FIELDS = [
  "slug",
  "name",
  "plan",
  "kind",
  "sales_owner",
  "erp_customer_id",
  "stripe_customer_id",
  "trial_ends_at",
  "contract_start",
  "contract_end",
  "tenant_id",
  "product",
  "status",
  "key",
  "scope",
  "scopes",
  "expires_at",
  "action",
  "actor_id",
  "target_type",
  "target_id",
  "metadata",
  "occurred_at",
  "events",
];
/** Plausible values for some fields, so a nasty value elsewhere in the body gets as far as the store. */
const goodValue = (field: string, tenantId: string): fc.Arbitrary<unknown> => {
  switch (field) {
    case "slug":
      return fc.integer({ min: 0, max: 1e9 }).map((n) => `fz-${n.toString(36)}`);
    case "tenant_id":
      return fc.constant(tenantId);
    case "action":
      return fc.constantFrom("fuzz.event", "tenant.updated");
    case "status":
      return fc.constantFrom("active", "cancelled");
    case "metadata":
      return fc.dictionary(nastyString, leaf, { maxKeys: 3 });
    default:
      return nastyString;
  }
};
const bodyFor = (tenantId: string) =>
  fc.oneof(
    fc.dictionary(fc.constantFrom(...KNOWN_FIELDS), nastyValue, { maxKeys: 6 }),
    fc
      .subarray(KNOWN_FIELDS, { minLength: 1, maxLength: 6 })
      .chain((fields) =>
        fc
          .tuple(...fields.map((f) => fc.oneof(goodValue(f, tenantId), nastyValue)))
          .map((values) => Object.fromEntries(fields.map((f, i) => [f, values[i]]))),
      ),
    nastyValue,
  );

const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
const deepObject = (n: number) => `${'{"metadata":'.repeat(n)}{}${"}".repeat(n)}`;
const RAW_PAYLOADS: (string | Buffer)[] = [
  "{",
  '{"slug":"a","slug":"b"}',
  deep(5000),
  deepObject(3000),
  `{"metadata":${deep(3000)}}`,
  Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
  "null",
  "[]",
  '"string"',
  "1e999",
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
];
const CONTENT_TYPES = [
  "application/json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "application/json; charset=latin1",
  "multipart/form-data; boundary=x",
  "",
];

const QUERY_KEYS = [
  "limit",
  "cursor",
  "status",
  "plan",
  "kind",
  "q",
  "tenant_id",
  "product",
  "actor_id",
  "action",
  "since",
  "until",
  "evil",
];

describe.each(ENGINES)("hostile input on %s", (engine) => {
  let t: TestApp;
  let tenantId = "";
  beforeAll(async () => {
    t = await openTestApp(engine);
    tenantId = (await t.call("admin", "POST", "/v1/tenants", { slug: "fuzz-target", name: "Fuzz target" })).json().id;
  });
  afterAll(() => t.close());

  /** Every row of every table, less what changes by itself (last_used_at is written in the background). */
  const fingerprint = async () => {
    const tables = ["tenants", "products", "entitlements", "api_keys", "audit_events"];
    const parts: string[] = [];
    for (const table of tables) {
      const rows = await t.store.db.query<{ f: string | null; n: number }>(
        `SELECT md5(coalesce(string_agg((to_jsonb(x) - 'last_used_at')::text, ',' ORDER BY (to_jsonb(x) - 'last_used_at')::text), '')) AS f,
                count(*)::int AS n FROM ${table} x`,
      );
      parts.push(`${table}:${rows[0]?.n}:${rows[0]?.f}`);
    }
    return parts.join("|");
  };

  /**
   * Every protected route but the two event streams: a stream that accepts its
   * input stays open by design (test/http/streams.test.ts checks their refusals).
   */
  const STREAMS = new Set(["/v1/audit/stream", "/v1/internal/changes"]);
  const routes = () => t.app.routeTable.filter((r) => r.roles && r.method !== "HEAD" && !STREAMS.has(r.url));

  /** A lone surrogate cannot be URI-encoded; send the bytes of one instead (invalid UTF-8 in the path). */
  const encode = (segment: string) => {
    try {
      return encodeURIComponent(segment);
    } catch {
      return "%ED%A0%80";
    }
  };
  const fillPath = (url: string, segment: string) => url.replace(/:(\w+)/g, () => encode(segment));

  async function check(method: string, url: string, payload: string | Buffer | undefined, headers: Record<string, string>) {
    const before = await fingerprint();
    const res = await t.app.inject({
      method: method as "GET",
      url,
      headers: { authorization: `Bearer ${t.tokens.admin}`, ...headers },
      ...(payload !== undefined ? { payload } : {}),
    });
    const label = `${method} ${url.slice(0, 120)} ${String(payload).slice(0, 80)} -> ${res.statusCode} ${res.body.slice(0, 200)}`;
    expect(res.statusCode, label).toBeLessThan(500);
    if (res.statusCode >= 400) {
      expect(res.headers["content-type"], label).toContain("application/problem+json");
      const p = res.json();
      expect(p.status, label).toBe(res.statusCode);
      expect(typeof p.code, label).toBe("string");
      expect(res.body, label).not.toMatch(/\bat .+:\d+:\d+/);
      expect(await fingerprint(), `store changed by a refused request: ${label}`).toBe(before);
    }
    return res;
  }

  it("generated JSON bodies, path segments, query strings and headers never give a 5xx or a half change", async () => {
    for (const r of routes()) {
      await fc.assert(
        fc.asyncProperty(
          bodyFor(tenantId),
          nastyString,
          fc.dictionary(fc.constantFrom(...QUERY_KEYS), nastyString, { maxKeys: 3 }),
          fc.option(nastyString, { nil: undefined }),
          async (b, segment, query, actor) => {
            const qs = Object.entries(query)
              .map(([k, v]) => `${k}=${encode(v)}`)
              .join("&");
            const url = `${fillPath(r.url, segment)}${qs ? `?${qs}` : ""}`;
            const headers: Record<string, string> = { "content-type": "application/json" };
            if (actor !== undefined && /^[\t\x20-\x7e]*$/.test(actor)) headers["x-actor-id"] = actor;
            const withBody = r.method === "POST" || r.method === "PATCH";
            await check(r.method, url, withBody ? JSON.stringify(b) : undefined, headers);
          },
        ),
        { numRuns: 40, seed: 20261127 },
      );
    }
  }, 300_000);

  it("raw payloads: broken, deep, huge, invalid UTF-8, wrong content types", async () => {
    for (const r of routes().filter((x) => x.method === "POST" || x.method === "PATCH")) {
      const url = fillPath(r.url, "6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10");
      for (const payload of RAW_PAYLOADS) {
        for (const ct of CONTENT_TYPES) await check(r.method, url, payload, ct ? { "content-type": ct } : {});
      }
      await check(r.method, url, `{"name":"${"x".repeat(17 * 1024 * 1024)}"}`, { "content-type": "application/json" });
    }
  }, 300_000);

  it("nested JSON up to 10,000 levels, anywhere in the body of every JSON route: never a 5xx, a refusal changes nothing", async () => {
    /** `depth` levels of arrays, objects or both around a leaf, built as text (no recursion anywhere). */
    const nestedText = (depth: number, shape: "array" | "object" | "mixed", leaf: string) => {
      let open = "";
      let close = "";
      for (let i = 0; i < depth; i++) {
        const array = shape === "array" || (shape === "mixed" && i % 2 === 0);
        open += array ? "[" : '{"k":';
        close = (array ? "]" : "}") + close;
      }
      return open + leaf + close;
    };
    const depth = fc.oneof(
      fc.integer({ min: 1, max: 80 }),
      fc.integer({ min: 80, max: 10_000 }),
      fc.constantFrom(31, 32, 33, 63, 64, 65, 4_111, 10_000),
    );
    const placement = fc.constantFrom("body", "field", "metadata", "batch", "verify");
    for (const r of routes().filter((x) => x.method === "POST" || x.method === "PATCH")) {
      const url = fillPath(r.url, r.url.includes(":id") ? tenantId : "x");
      await fc.assert(
        fc.asyncProperty(
          depth,
          fc.constantFrom("array", "object", "mixed"),
          placement,
          fc.constantFrom("1", '"x"', "{}", "[]"),
          async (d, shape, where, leaf) => {
            const value = nestedText(d, shape as "array", leaf);
            const payload =
              where === "body"
                ? value
                : where === "field"
                  ? `{"name":${value},"slug":"fz-deep"}`
                  : where === "metadata"
                    ? `{"action":"deep.fuzz","tenant_id":"${tenantId}","metadata":{"m":${value}}}`
                    : where === "batch"
                      ? `{"events":[{"action":"deep.fuzz"},{"action":"deep.fuzz","metadata":{"m":${value}}}]}`
                      : `{"key":${value}}`;
            const res = await check(r.method, url, payload, { "content-type": "application/json" });
            // Everything past the bounds is refused; at or under them, only the route's own rules decide.
            if (d + 3 > 64) expect(res.statusCode, `${r.method} ${r.url} depth ${d}`).toBe(400);
          },
        ),
        { numRuns: 12, seed: 20261129 },
      );
    }
  }, 600_000);

  it("prototype pollution does not reach objects", () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
