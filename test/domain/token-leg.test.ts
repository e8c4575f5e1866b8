import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManagedTokenLeg, TOKEN_CACHE_DEFAULTS } from "../../src/domain/access/token-leg.js";
import { createToken } from "../../src/domain/access/tokens.js";
import { LastUsedCoalescer } from "../../src/domain/last-used.js";
import { managedTokensTouch } from "../../src/store/managed-tokens.js";
import { openTestDb, type TestDb } from "../helpers/db.js";

const log = { warn: () => {}, error: () => {}, info: () => {} };

/** The access cache's invalidation rules, against a real store. */
describe("the managed-token leg's cache", () => {
  let store: TestDb;
  let n = 0;
  beforeAll(async () => {
    store = await openTestDb("pglite");
  });
  afterAll(() => store.close());

  const fresh = async () => {
    const lastUsed = new LastUsedCoalescer(store.db, log, undefined, { touch: managedTokensTouch, what: "managed token" });
    const leg = new ManagedTokenLeg(store.db, lastUsed, TOKEN_CACHE_DEFAULTS);
    leg.onReset(true);
    const created = await createToken(store.db, { name: `leg-${n++}`, role: "service" }, { principal: "t", actorId: "t" }, new Set());
    expect(leg.peek(created.token, Date.now())).toBeUndefined();
    expect(await leg.lookup(created.token, Date.now())).toMatchObject({ kind: "token", id: created.id, role: "service" });
    expect(leg.peek(created.token, Date.now())).toMatchObject({ id: created.id });
    return { leg, created };
  };

  it("answers from memory once looked up; a notification naming the token, or an unreadable one, drops it", async () => {
    const { leg, created } = await fresh();
    leg.onNotify(JSON.stringify({ token_id: "00000000-0000-4000-8000-000000000000" }));
    expect(leg.peek(created.token, Date.now())).toBeDefined();
    leg.onNotify(JSON.stringify({ token_id: created.id }));
    expect(leg.peek(created.token, Date.now())).toBeUndefined();
    await leg.lookup(created.token, Date.now());
    leg.onNotify("not json");
    expect(leg.peek(created.token, Date.now())).toBeUndefined();
  });

  it("keeps tokens when a change names a session or a person; drops them when the channel resets", async () => {
    const { leg, created } = await fresh();
    leg.onNotify(JSON.stringify({ session_id: "s" }));
    leg.onNotify(JSON.stringify({ person_id: "p" }));
    expect(leg.peek(created.token, Date.now())).toBeDefined();
    leg.onReset(false);
    expect(leg.peek(created.token, Date.now())).toBeUndefined();
  });

  it("remembers an unknown token's digest, and refuses malformed ones without a lookup", async () => {
    const { leg } = await fresh();
    const unknown = `rt_${"x".repeat(43)}`;
    expect(leg.peek(unknown, Date.now())).toBeUndefined();
    expect(await leg.lookup(unknown, Date.now())).toBeNull();
    expect(leg.peek(unknown, Date.now())).toBeNull();
    expect(leg.peek("rt_short", Date.now())).toBeNull();
    expect(leg.stats().misses).toBe(1);
  });

  it("refuses a cached token as its expiry passes, by the clock alone", async () => {
    const { leg, created } = await fresh();
    expect(leg.peek(created.token, Date.now() + 365 * 86_400_000)).not.toBeNull();
    const expiring = await createToken(
      store.db,
      { name: `leg-${n++}`, role: "auditor", expires_at: new Date(Date.now() + 60_000).toISOString() },
      { principal: "t", actorId: "t" },
      new Set(),
    );
    expect(await leg.lookup(expiring.token, Date.now())).not.toBeNull();
    expect(leg.peek(expiring.token, Date.now() + 61_000)).toBeNull();
  });
});
