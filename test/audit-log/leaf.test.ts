import canonicalize from "canonicalize";
import { describe, expect, it } from "vitest";
import { LEAF_FIELDS, type LeafEvent, leafOf } from "../../src/domain/audit-log/leaf.js";

const base: LeafEvent = {
  id: "9007199254740993",
  tenant_id: "0b6f1a9e-3c1d-4b8e-9a3e-2f1c5d7e8a9b",
  product: "billing",
  actor_id: "user-7@example.com",
  action: "tenant.updated",
  target_type: "tenant",
  target_id: "t-1",
  metadata: {},
  occurred_at: "2026-11-02T10:11:12.345Z",
  created_at: "2026-11-02T10:11:13.000Z",
};

/** What the package gives for the whole object: the leaf's definition. */
const reference = (e: LeafEvent) => {
  const picked: Record<string, unknown> = {};
  for (const f of LEAF_FIELDS) picked[f] = e[f];
  return Buffer.from(canonicalize(picked) as string, "utf8");
};

describe("leafOf", () => {
  const cases: [string, LeafEvent][] = [
    ["plain", base],
    ["nulls", { ...base, tenant_id: null, product: null, target_type: null, target_id: null }],
    [
      "tricky metadata",
      {
        ...base,
        metadata: {
          z: 1,
          big: 1e21,
          neg: -0,
          tenth: 0.1,
          huge: 1.2345678901234568e29,
          list: [3, "b", null, true, { b: 1, a: [] }],
          "\u20ac": "euro",
          "\ud83d\ude00": "astral key",
          "": "empty key",
          A: "upper before lower",
          nested: { "\u00e9": 1, e: 2, "\r": "cr" },
        },
      },
    ],
    [
      "escapes and unicode in the fields",
      {
        ...base,
        actor_id: 'quote " backslash \\ tab \t nul \u0000 line \u2028 del \u007f',
        action: "caf\u00e9.\ud834\udd1e",
        target_id: "</script>",
      },
    ],
    ["metadata not an object", { ...base, metadata: [1, 2] as unknown as LeafEvent["metadata"] }],
  ];
  for (const [name, e] of cases) {
    it(`is the package's canonical JSON of the ten fields: ${name}`, () => {
      expect(leafOf(e).toString("utf8")).toBe(reference(e).toString("utf8"));
    });
  }

  it("ignores fields beyond the ten (log_index)", () => {
    const withIndex = { ...base, log_index: 42 } as LeafEvent;
    expect(leafOf(withIndex).equals(reference(base))).toBe(true);
  });

  it("refuses an event missing a field instead of leaving it out", () => {
    const { target_id: _, ...missing } = base;
    expect(() => leafOf(missing as LeafEvent)).toThrow(/target_id/);
  });
});
