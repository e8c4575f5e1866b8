import { hash, randomBytes } from "node:crypto";

// Glossary: an API key is `bp_` + 22 base64url chars (16 random bytes). Its
// prefix (`bp_` + the first 8 of them) names it in lists and finds its row;
// the rest is the secret that only the argon2 hash in the row can confirm.

/** What a presented key must look like to be looked up at all. */
export const KEY_PATTERN = /^bp_[A-Za-z0-9_-]{22}$/;
const PREFIX_LENGTH = "bp_".length + 8;

export interface KeyMaterial {
  /** The plaintext: returned once by create, never stored or logged. */
  key: string;
  prefix: string;
}

export function newKeyMaterial(): KeyMaterial {
  const key = `bp_${randomBytes(16).toString("base64url")}`;
  return { key, prefix: keyPrefix(key) };
}

export const keyPrefix = (key: string): string => key.slice(0, PREFIX_LENGTH);

/**
 * What the verify caches are keyed by: a SHA-256 of the presented key, so
 * they hold no plaintext. (A fast hash is fine here: the input has 128 bits
 * of entropy, so the digest cannot be reversed by guessing.)
 */
export const keyDigest = (key: string): string => hash("sha256", key, "base64");
