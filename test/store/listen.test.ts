import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { notifyVerifyChange, VERIFY_CHANNEL } from "../../src/store/notify.js";
import { LISTEN_APPLICATION_NAME } from "../../src/store/pg.js";
import { ENGINES, openTestDb, type TestDb } from "../helpers/db.js";

describe.each(ENGINES)("verify-change notifications on %s", (engine) => {
  let store: TestDb;
  const messages: string[] = [];
  const resets: boolean[] = [];
  let unlisten: () => Promise<void>;
  beforeAll(async () => {
    store = await openTestDb(engine);
    unlisten = await store.db.listen(
      VERIFY_CHANNEL,
      (m) => messages.push(m),
      (l) => resets.push(l),
    );
  });
  afterAll(async () => {
    await unlisten();
    await store.close();
  });

  it("reports that it listens once subscribed", async () => {
    await expect.poll(() => resets).toEqual([true]);
  });

  it("delivers a change when its transaction commits, and never one that rolled back", async () => {
    const n = messages.length;
    await store.db
      .tx(async (q) => {
        await notifyVerifyChange(q, { key_id: "rolled-back" });
        throw new Error("abort");
      })
      .catch(() => {});
    await store.db.tx((q) => notifyVerifyChange(q, { tenant_id: "committed" }));
    await expect.poll(() => messages.slice(n)).toEqual([JSON.stringify({ tenant_id: "committed" })]);
  });

  it.runIf(engine === "postgres")("says so when the connection drops, then listens again", async () => {
    resets.length = 0;
    await store.db.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
      [LISTEN_APPLICATION_NAME],
    );
    await expect.poll(() => resets, { timeout: 5000 }).toEqual([false, true]);
    const n = messages.length;
    await store.db.tx((q) => notifyVerifyChange(q, { key_id: "after" }));
    await expect.poll(() => messages.slice(n)).toEqual([JSON.stringify({ key_id: "after" })]);
  });
});
