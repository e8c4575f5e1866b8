import { hash, randomBytes } from "node:crypto";

// A managed token's secret is `rt_` + 43 base62 characters (about 256 bits):
// high-entropy, so a SHA-256 digest is all the store needs (no argon2), and
// the digest, looked up by equality, tells a timing attacker nothing useful
// (finding a token from a matched digest prefix would need a preimage).

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LENGTH = 43;
export const TOKEN_PATTERN = /^rt_[0-9A-Za-z]{43}$/;

export interface TokenSecret {
  /** The plaintext: returned once by create or rotate, never stored or logged. */
  token: string;
  prefix: string;
  digest: string;
}

/** Uniform base62 by rejection sampling: bytes 248-255 would favour the first characters. */
function base62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248 && out.length < length) out += ALPHABET[b % 62];
    }
  }
  return out;
}

export function newTokenSecret(): TokenSecret {
  const random = base62(RANDOM_LENGTH);
  const token = `rt_${random}`;
  return { token, prefix: `rt_${random.slice(0, 8)}`, digest: tokenDigest(token) };
}

/** What the store and the caches know a token by (base64 SHA-256), never the plaintext. */
export const tokenDigest = (token: string): string => hash("sha256", token, "base64");
