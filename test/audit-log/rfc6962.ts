import { createHash, createPublicKey, verify } from "node:crypto";

// An RFC 6962 verifier of the test's own, written from the RFC's text and
// sharing nothing with src/: the tree hash, PATH and PROOF computed naively
// over the whole list of leaves, and the note signature checked with the raw
// Ed25519 key from the verifier key string.

const sha = (...parts: Buffer[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};
export const leafHashOf = (leaf: Buffer) => sha(Buffer.from([0]), leaf);
const node = (l: Buffer, r: Buffer) => sha(Buffer.from([1]), l, r);
const k = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1);

/** MTH(D[n]) over leaf hashes. */
export function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return sha();
  if (d.length === 1) return d[0] as Buffer;
  const s = k(d.length);
  return node(mth(d.slice(0, s)), mth(d.slice(s)));
}

/** PATH(m, D[n]). */
export function path(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return [];
  const s = k(d.length);
  return m < s ? [...path(m, d.slice(0, s)), mth(d.slice(s))] : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
}

/** PROOF(m, D[n]). */
export function proof(m: number, d: Buffer[]): Buffer[] {
  const sub = (mm: number, dd: Buffer[], b: boolean): Buffer[] => {
    if (mm === dd.length) return b ? [] : [mth(dd)];
    const s = k(dd.length);
    return mm <= s ? [...sub(mm, dd.slice(0, s), b), mth(dd.slice(s))] : [...sub(mm - s, dd.slice(s), false), mth(dd.slice(0, s))];
  };
  return sub(m, d, true);
}

/** Checks a signed checkpoint against a verifier key string; returns origin, size, root. */
export function openCheckpoint(note: string, verifierKey: string): { origin: string; size: number; root: Buffer } {
  const [, name, hex, b64] = /^([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(verifierKey.trim()) as unknown as [string, string, string, string];
  const raw = Buffer.from(b64, "base64");
  if (raw[0] !== 1 || raw.length !== 33) throw new Error("not an Ed25519 verifier key");
  const pub = raw.subarray(1);
  const id = sha(Buffer.from(`${name}\n`), Buffer.from([1]), pub).subarray(0, 4);
  if (id.toString("hex") !== hex) throw new Error("key id mismatch");
  const [text, sigs] = note.split("\n\n") as [string, string];
  const m = /^\u2014 (\S+) (\S+)\n$/.exec(sigs);
  if (!m || m[1] !== name) throw new Error("no signature line by that name");
  const sig = Buffer.from(m[2] as string, "base64");
  if (!sig.subarray(0, 4).equals(id)) throw new Error("signature by another key id");
  const key = createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), pub]), format: "der", type: "spki" });
  if (!verify(null, Buffer.from(`${text}\n`), key, sig.subarray(4))) throw new Error("bad signature");
  const [origin, size, root] = text.split("\n") as [string, string, string];
  return { origin, size: Number(size), root: Buffer.from(root, "base64") };
}
