import { describe, expect, it } from "vitest";
import { KEY_PATTERN, keyDigest, keyPrefix, newKeyMaterial } from "../../src/domain/key-material.js";

describe("key material", () => {
  it("is bp_ + 22 unpadded base64url chars of 16 random bytes, with an 11-char prefix", () => {
    const { key, prefix } = newKeyMaterial();
    expect(key).toMatch(/^bp_[A-Za-z0-9_-]{22}$/);
    expect(KEY_PATTERN.test(key)).toBe(true);
    expect(Buffer.from(key.slice(3), "base64url")).toHaveLength(16);
    expect(prefix).toBe(key.slice(0, 11));
    expect(keyPrefix(key)).toBe(prefix);
  });

  it("draws distinct keys and prefixes", () => {
    const drawn = Array.from({ length: 2000 }, newKeyMaterial);
    expect(new Set(drawn.map((k) => k.key)).size).toBe(2000);
    expect(new Set(drawn.map((k) => k.prefix)).size).toBe(2000);
  });

  it("the pattern refuses near misses", () => {
    const good = newKeyMaterial().key;
    for (const bad of ["", "bp_", good.slice(0, -1), `${good}A`, `Bp_${good.slice(3)}`, ` ${good}`, `${good}\n`, `bp_${"+".repeat(22)}`]) {
      expect(KEY_PATTERN.test(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  it("the cache digest is a SHA-256, not the key", () => {
    const { key } = newKeyMaterial();
    expect(Buffer.from(keyDigest(key), "base64")).toHaveLength(32);
    expect(keyDigest(key)).not.toContain(key.slice(3));
  });
});
