import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";

const VERIFY = "/v1/internal/api-keys/verify";
const FLOOD_CONNECTIONS = 150;
const FRESH_KEYS = 40;
const FRESH_EVERY_MS = 200;

const secret = () => {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  return Array.from({ length: 14 }, () => chars[Math.floor(Math.random() * chars.length)]).join("");
};

/**
 * One tenant floods verify with wrong secrets on its own key's prefix (each
 * would cost an argon2 hash); meanwhile another tenant's keys, never seen
 * before, are verified once each at a few per second. The flood costs its
 * sender: the other tenant's verifies answer valid (never a wrong
 * not_found), and the flooder's own cached key keeps verifying. Latency
 * figures are left to the benchmark (bench/verify, scenario (e)).
 */
describe.each(ENGINES)("one tenant's wrong-secret flood on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
  });
  afterAll(async () => {
    await t.close();
  });

  const tenant = async () => (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug("fair"), name: "Fair" })).json().id as string;
  const newKey = async (tenantId: string) =>
    (await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenantId, name: "k" })).json().key as string;
  const verify = async (key: string) => {
    const res = await t.call("service", "POST", VERIFY, { key });
    return res.statusCode === 200 ? (res.json().valid ? "valid" : res.json().reason) : `${res.statusCode} ${res.json().detail}`;
  };

  it("costs the flooder, not the other tenants", async () => {
    const flooder = await tenant();
    const own = await newKey(flooder);
    expect(await verify(own)).toBe("valid");
    const other = await tenant();
    const fresh: string[] = [];
    for (let i = 0; i < FRESH_KEYS; i++) fresh.push(await newKey(other));

    const prefix = own.slice(0, 11);
    let flooding = true;
    const flood: Record<string, number> = {};
    const floods = Array.from({ length: FLOOD_CONNECTIONS }, async () => {
      while (flooding) {
        const r = await verify(prefix + secret());
        flood[r] = (flood[r] ?? 0) + 1;
      }
    });

    const answers: string[] = [];
    const ownDuring: string[] = [];
    for (const key of fresh) {
      await new Promise((r) => setTimeout(r, FRESH_EVERY_MS));
      const [a, o] = await Promise.all([verify(key), verify(own)]);
      answers.push(a);
      ownDuring.push(o);
    }
    flooding = false;
    await Promise.all(floods);

    // The flood really pressed on the hashing threads: some of it was shed.
    const busy = (r: string) => r.startsWith("503 ");
    expect(Object.keys(flood).some(busy), JSON.stringify(flood)).toBe(true);
    expect(
      Object.keys(flood).every((r) => r === "not_found" || busy(r)),
      JSON.stringify(flood),
    ).toBe(true);
    const valid = answers.filter((a) => a === "valid").length;
    expect(valid / answers.length, JSON.stringify(answers)).toBeGreaterThanOrEqual(0.95);
    // Never a wrong answer: what is not valid is a 503 (retry), not not_found.
    expect(
      answers.every((a) => a === "valid" || busy(a)),
      JSON.stringify(answers),
    ).toBe(true);
    expect(
      ownDuring.every((a) => a === "valid"),
      JSON.stringify(ownDuring),
    ).toBe(true);
  }, 120_000);
});
