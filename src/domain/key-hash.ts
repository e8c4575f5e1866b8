import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Options } from "@node-rs/argon2";
import type { Argon2Pool } from "./argon2-pool.js";

/**
 * Stored key hashes are `<tag>|<fields...>`: the tag names the scheme, so
 * parameters can change later without re-keying. A new scheme is one more
 * entry in `schemes`; verify dispatches on the tag and refuses an unknown one.
 */
export type HashCheck = "match" | "mismatch" | "unknown_scheme";

export interface KeyHasher {
  /**
   * The stored form of a new key's plaintext, in the current scheme.
   * `group`: whose fair share of the hashing threads it uses (see Argon2Pool).
   */
  hash(plaintext: string, group?: string): Promise<string>;
  /** Whether `plaintext` is the key `stored` was made from; `group` as for `hash` (the key's tenant). */
  check(plaintext: string, stored: string, group?: string): Promise<HashCheck>;
}

interface Scheme {
  hash(plaintext: string, group?: string): Promise<string>;
  check(plaintext: string, fields: string[], group?: string): Promise<boolean>;
}

// Algorithm.Argon2id is a const enum, which isolated modules cannot read.
const ARGON2ID = 2;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const argon2idOptions = (salt: Uint8Array): Options => ({
  algorithm: ARGON2ID,
  timeCost: 1,
  memoryCost: 64 * 1024,
  parallelism: 4,
  outputLen: HASH_BYTES,
  salt,
});

// Standard base64 without padding, as in PHC strings.
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64").replace(/=+$/, "");
const B64 = /^[A-Za-z0-9+/]+$/;

/**
 * Hashing a new key (an admin's create) waits its turn this long, where a
 * verify gives up after the pool's 2 s: a create is rare and better late
 * than refused, while a verify's caller is waiting on the hot path.
 */
const CREATE_MAX_WAIT_MS = 15_000;

function argon2id(pool: Argon2Pool): Scheme {
  return {
    async hash(plaintext, group) {
      const salt = randomBytes(SALT_BYTES);
      const out = await pool.hashRaw(plaintext, argon2idOptions(salt), group, CREATE_MAX_WAIT_MS);
      return `argon2id|${b64(salt)}|${b64(out)}`;
    },
    async check(plaintext, fields, group) {
      const [salt64, hash64, ...rest] = fields;
      if (!salt64 || !hash64 || rest.length > 0 || !B64.test(salt64) || !B64.test(hash64)) return false;
      const salt = Buffer.from(salt64, "base64");
      const expected = Buffer.from(hash64, "base64");
      if (salt.length !== SALT_BYTES || expected.length !== HASH_BYTES) return false;
      const actual = await pool.hashRaw(plaintext, argon2idOptions(salt), group);
      return timingSafeEqual(actual, expected);
    },
  };
}

export function createKeyHasher(pool: Argon2Pool): KeyHasher {
  const schemes = new Map<string, Scheme>([["argon2id", argon2id(pool)]]);
  const current = schemes.get("argon2id") as Scheme;
  return {
    hash: (plaintext, group) => current.hash(plaintext, group),
    async check(plaintext, stored, group) {
      const [tag = "", ...fields] = stored.split("|");
      const scheme = schemes.get(tag);
      if (!scheme) return "unknown_scheme";
      return (await scheme.check(plaintext, fields, group)) ? "match" : "mismatch";
    },
  };
}
