import { hashRawSync } from "@node-rs/argon2";
import { afterAll, describe, expect, it } from "vitest";
import { Argon2Pool } from "../../src/domain/argon2-pool.js";
import { AppError } from "../../src/domain/errors.js";
import { createKeyHasher } from "../../src/domain/key-hash.js";
import { newKeyMaterial } from "../../src/domain/key-material.js";

describe("the argon2id key scheme", () => {
  const pool = new Argon2Pool({ threads: 2, maxQueue: 16, maxWaitMs: 10_000, onError: () => {} });
  const hasher = createKeyHasher(pool);
  afterAll(() => pool.close());

  it("stores argon2id|<16-byte salt>|<32-byte hash> with t=1, m=64 MiB, p=4 (checked against the binding directly)", async () => {
    const { key } = newKeyMaterial();
    const stored = await hasher.hash(key);
    expect(stored).toMatch(/^argon2id\|[A-Za-z0-9+/]{22}\|[A-Za-z0-9+/]{43}$/);
    const [, salt = "", hash = ""] = stored.split("|");
    const expected = hashRawSync(key, {
      algorithm: 2, // Argon2id (a const enum isolated modules cannot read)
      timeCost: 1,
      memoryCost: 65536,
      parallelism: 4,
      outputLen: 32,
      salt: Buffer.from(salt, "base64"),
    });
    expect(Buffer.from(hash, "base64").equals(expected)).toBe(true);
    expect(stored).not.toContain(key.slice(3));
  });

  it("salts every hash, matches the right key and only it", async () => {
    const { key } = newKeyMaterial();
    const [a, b] = await Promise.all([hasher.hash(key), hasher.hash(key)]);
    expect(a).not.toBe(b);
    expect(await hasher.check(key, a as string)).toBe("match");
    expect(await hasher.check(newKeyMaterial().key, a as string)).toBe("mismatch");
    expect(await hasher.check(`${key.slice(0, -1)}${key.endsWith("A") ? "B" : "A"}`, a as string)).toBe("mismatch");
  });

  it("dispatches on the tag: an unknown scheme is refused, a garbled value never matches", async () => {
    const { key } = newKeyMaterial();
    const stored = await hasher.hash(key);
    const [, salt, hash] = stored.split("|");
    expect(await hasher.check(key, `bcrypt|${salt}|${hash}`)).toBe("unknown_scheme");
    expect(await hasher.check(key, `ARGON2ID|${salt}|${hash}`)).toBe("unknown_scheme");
    expect(await hasher.check(key, "")).toBe("unknown_scheme");
    for (const garbled of [
      `argon2id|${salt}`,
      `argon2id|${salt}|${hash}|x`,
      `argon2id|${salt}|${hash?.slice(1)}`,
      `argon2id|${salt}|*${hash}`,
      "argon2id||",
    ]) {
      expect(await hasher.check(key, garbled), garbled).toBe("mismatch");
    }
  });
});

describe("the argon2 pool", () => {
  it("refuses work beyond its threads and queue with a 503 (unavailable, Retry-After), and recovers", async () => {
    const pool = new Argon2Pool({ threads: 1, maxQueue: 1, maxWaitMs: 10_000, onError: () => {} });
    const hasher = createKeyHasher(pool);
    try {
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => hasher.hash(newKeyMaterial().key)));
      const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason);
      expect(refused.length).toBeGreaterThan(0);
      expect(results.filter((r) => r.status === "fulfilled").length).toBeGreaterThan(0);
      for (const e of refused) {
        expect(e).toBeInstanceOf(AppError);
        expect((e as AppError).code).toBe("unavailable");
        expect((e as AppError).extra.retryAfterSeconds).toBe(1);
      }
      const { rejected, shed } = pool.stats();
      expect(rejected + shed).toBe(refused.length);
      await expect(hasher.hash(newKeyMaterial().key)).resolves.toMatch(/^argon2id\|/);
    } finally {
      await pool.close();
    }
  });

  it("holds a refusal for a full queue for its delay (a tarpit for floods) while admitted hashes go on", async () => {
    const pool = new Argon2Pool({ threads: 1, maxQueue: 0, maxWaitMs: 10_000, shedDelayMs: 400, onError: () => {} });
    const hasher = createKeyHasher(pool);
    try {
      const admitted = hasher.hash(newKeyMaterial().key);
      const t0 = performance.now();
      const refused = await hasher.hash(newKeyMaterial().key).then(
        () => null,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(AppError);
      expect((refused as AppError).code).toBe("unavailable");
      // Answered after the delay, not at once: a closed-loop flooder asks again only then.
      expect(performance.now() - t0).toBeGreaterThanOrEqual(380);
      await expect(admitted).resolves.toMatch(/^argon2id\|/);
      expect(pool.stats().shed).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it("holds at most maxHeld refusals (the rest are answered at once), and close() answers held ones at once", async () => {
    const pool = new Argon2Pool({ threads: 1, maxQueue: 0, maxWaitMs: 10_000, shedDelayMs: 60_000, maxHeld: 1, onError: () => {} });
    const hasher = createKeyHasher(pool);
    const admitted = hasher.hash(newKeyMaterial().key);
    const held = hasher.hash(newKeyMaterial().key).then(
      () => "hashed",
      (e: unknown) => (e as AppError).code,
    );
    const t0 = performance.now();
    await expect(hasher.hash(newKeyMaterial().key)).rejects.toMatchObject({ code: "unavailable" });
    // Past the bound: answered at once, not after the minute-long hold.
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(pool.stats()).toMatchObject({ held: 1, shed: 2 });
    await expect(admitted).resolves.toMatch(/^argon2id\|/);
    await pool.close();
    expect(await held).toBe("unavailable");
    expect(pool.stats().held).toBe(0);
  });

  it("drops a verify's hash that waited past its deadline instead of computing it late", async () => {
    const pool = new Argon2Pool({ threads: 1, maxQueue: 8, maxWaitMs: -1, onError: () => {} });
    const stored = `argon2id|${Buffer.alloc(16).toString("base64").replace(/=+$/, "")}|${Buffer.alloc(32).toString("base64").replace(/=+$/, "")}`;
    try {
      await expect(createKeyHasher(pool).check(newKeyMaterial().key, stored)).rejects.toMatchObject({ code: "unavailable" });
      expect(pool.stats()).toMatchObject({ hashed: 0, rejected: 1 });
    } finally {
      await pool.close();
    }
  });

  it("shares the threads fairly: when the queue is full the longest group gives way, and groups take turns", async () => {
    const pool = new Argon2Pool({ threads: 1, maxQueue: 4, maxWaitMs: 10_000, onError: () => {} });
    const hasher = createKeyHasher(pool);
    try {
      const flood = Promise.allSettled(Array.from({ length: 20 }, () => hasher.hash(newKeyMaterial().key, "tenant:a")));
      // 1 running and 4 waiting; the other 15 are refused at once, their group being the longest.
      expect(pool.stats()).toMatchObject({ queued: 4, shed: 15 });
      // Another group's hashes still get in (one of the flood's waiting hashes gives way) and are served in turn.
      for (let i = 0; i < 3; i++) await expect(hasher.hash(newKeyMaterial().key, "tenant:b")).resolves.toMatch(/^argon2id\|/);
      const results = await flood;
      expect(results.filter((r) => r.status === "fulfilled").length).toBeGreaterThan(0);
      for (const r of results.filter((r) => r.status === "rejected")) {
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: "unavailable" });
      }
      expect(pool.stats()).toMatchObject({ shed: 16, rejected: 0 });
    } finally {
      await pool.close();
    }
  });
});
