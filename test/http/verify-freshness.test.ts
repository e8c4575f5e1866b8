import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyVerifier } from "../../src/domain/key-verifier.js";
import type { Queryable, Row } from "../../src/store/db.js";
import { openTestApp, type TestApp, uniqueSlug } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";

const VERIFY = "/v1/internal/api-keys/verify";

describe.each(ENGINES)("verify freshness on %s", (engine) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await openTestApp(engine);
  });
  afterAll(async () => {
    await t.close();
  });

  const newKey = async () => {
    const tenantId = (await t.call("admin", "POST", "/v1/tenants", { slug: uniqueSlug("fresh"), name: "Fresh" })).json().id as string;
    const key = (await t.call("admin", "POST", "/v1/api-keys", { tenant_id: tenantId, name: "k" })).json();
    return { tenantId, id: key.id as string, key: key.key as string };
  };

  it("an instance's own revoke takes effect on it as soon as the 204 is sent", async () => {
    const k = await newKey();
    expect((await t.call("service", "POST", VERIFY, { key: k.key })).json().valid).toBe(true);
    expect((await t.call("admin", "DELETE", `/v1/api-keys/${k.id}`)).statusCode).toBe(204);
    expect((await t.call("service", "POST", VERIFY, { key: k.key })).json()).toEqual({ valid: false, reason: "revoked" });
  });

  it("a verify arriving after an invalidation never answers from a load that started before it", async () => {
    const k = await newKey();
    const ks = t.app.keyServices;
    expect((await ks.verifier.verify({ key: k.key })).valid).toBe(true);
    // Facts dropped (as by an unrelated change): the next verify loads the key by id.
    ks.cache.onNotify(JSON.stringify({ key_id: k.id }));

    // The first key load reads the row, then is held before it returns.
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let read!: () => void;
    const hasRead = new Promise<void>((r) => {
      read = r;
    });
    let holds = 1;
    const db = t.store.db;
    const gated: Queryable = {
      async query<R extends Row>(text: string, values?: readonly unknown[]) {
        const rows = await db.query<R>(text, values);
        if (holds > 0 && text.includes("FROM api_keys WHERE id =")) {
          holds--;
          read();
          await held;
        }
        return rows;
      },
      exec: (sql) => db.exec(sql),
    };
    const verifier = new KeyVerifier(gated, ks.hasher, ks.cache, ks.lastUsed, t.app.log);
    const early = verifier.verify({ key: k.key });
    await hasRead;
    // The revoke commits (and invalidates) while the early load holds pre-revoke facts.
    expect((await t.call("admin", "DELETE", `/v1/api-keys/${k.id}`)).statusCode).toBe(204);
    const late = verifier.verify({ key: k.key });
    expect(await late).toEqual({ valid: false, reason: "revoked" });
    release();
    // The early caller was concurrent with the revoke: either answer is linearizable. Its facts are not kept.
    await early;
    expect(await verifier.verify({ key: k.key })).toEqual({ valid: false, reason: "revoked" });
  });
});
