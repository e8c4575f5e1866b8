import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LastUsedCoalescer } from "../../src/domain/last-used.js";
import { ENGINES, openTestDb, type TestDb } from "../helpers/db.js";

describe.each(ENGINES)("last_used_at coalescer on %s", (engine) => {
  let store: TestDb;
  let tenantId = "";
  const warnings: string[] = [];
  const log = { warn: (_o: unknown, msg?: string) => warnings.push(String(msg)), error: () => {} };

  beforeAll(async () => {
    store = await openTestDb(engine);
    const rows = await store.db.query<{ id: string }>(
      "INSERT INTO tenants (slug, name) VALUES ('lu-' || md5(random()::text), 'LU') RETURNING id",
    );
    tenantId = rows[0]?.id ?? "";
  });
  afterAll(() => store.close());

  const newKey = async () => {
    const rows = await store.db.query<{ id: string }>(
      "INSERT INTO api_keys (tenant_id, name, prefix, hash, created_by) VALUES ($1, 'k', 'bp_' || substr(md5(random()::text), 1, 8), 'x', 'test') RETURNING id",
      [tenantId],
    );
    return rows[0]?.id ?? "";
  };
  const lastUsed = async (id: string) =>
    (await store.db.query<{ at: Date | null }>("SELECT last_used_at AS at FROM api_keys WHERE id = $1", [id]))[0]?.at ?? null;

  it("notes a use at most once per interval and writes a batch in one go", async () => {
    const c = new LastUsedCoalescer(store.db, log, { intervalMs: 60_000, flushEveryMs: 60_000 });
    const [a, b] = [await newKey(), await newKey()];
    const t0 = Date.now();
    c.touch(a, t0);
    c.touch(a, t0 + 1000);
    c.touch(b, t0 + 2000);
    expect(c.pendingCount).toBe(2);
    await c.flush();
    expect(c.pendingCount).toBe(0);
    expect((await lastUsed(a))?.getTime()).toBe(t0);
    expect((await lastUsed(b))?.getTime()).toBe(t0 + 2000);
    c.touch(a, t0 + 30_000);
    expect(c.pendingCount).toBe(0);
    c.touch(a, t0 + 61_000);
    expect(c.pendingCount).toBe(1);
    await c.stop();
    expect((await lastUsed(a))?.getTime()).toBe(t0 + 61_000);
  });

  it("never moves last_used_at backwards (instances flush in any order)", async () => {
    const id = await newKey();
    const late = new LastUsedCoalescer(store.db, log);
    const early = new LastUsedCoalescer(store.db, log);
    const t0 = Date.now();
    late.touch(id, t0);
    early.touch(id, t0 - 5000);
    await late.flush();
    await early.flush();
    expect((await lastUsed(id))?.getTime()).toBe(t0);
  });

  it("flushes on its timer, off the request path", async () => {
    const id = await newKey();
    const c = new LastUsedCoalescer(store.db, log, { intervalMs: 60_000, flushEveryMs: 50 });
    c.start();
    c.touch(id);
    await expect.poll(() => lastUsed(id), { timeout: 2000 }).not.toBeNull();
    await c.stop();
  });

  it("keeps a batch it could not write, and says so", async () => {
    const closed = await openTestDb("pglite");
    await closed.close();
    const c = new LastUsedCoalescer(closed.db, log);
    c.touch("6f1c1a43-6a52-4c1e-9d63-5f2b0c7f2a10");
    await c.flush();
    expect(c.pendingCount).toBe(1);
    expect(warnings.some((w) => w.includes("last_used_at"))).toBe(true);
  });
});
