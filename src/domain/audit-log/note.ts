import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from "node:crypto";

// Signed notes (C2SP signed-note, Go's golang.org/x/mod/sumdb/note) with
// Ed25519 keys, and checkpoints (C2SP tlog-checkpoint) as their text.
//   signer key:   PRIVATE+KEY+<name>+<id as 8 hex>+<base64(0x01 ‖ seed)>
//   verifier key: <name>+<id as 8 hex>+<base64(0x01 ‖ public key)>
//   key id:       the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)
//   signature:    "— <name> <base64(key id ‖ Ed25519 signature of the text)>\n"

const ALG_ED25519 = 1;
// DER prefixes that turn a raw 32-byte Ed25519 seed / public key into PKCS#8 / SPKI.
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

export class NoteError extends Error {
  override name = "NoteError";
}

/** Go's note.isValidName: non-empty, valid UTF-8, no white space, no '+'. */
export const isValidKeyName = (name: string): boolean =>
  name.length > 0 && !/[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000+]/u.test(name) && !/[\uD800-\uDFFF]/u.test(name);

const keyId = (name: string, publicKey: Buffer): Buffer =>
  createHash("sha256")
    .update(Buffer.from(`${name}\n`, "utf8"))
    .update(Buffer.from([ALG_ED25519]))
    .update(publicKey)
    .digest()
    .subarray(0, 4);

export interface Verifier {
  name: string;
  /** 4 bytes. */
  id: Buffer;
  /** The raw 32-byte Ed25519 public key. */
  publicKey: Buffer;
  key: KeyObject;
}

export interface Signer extends Verifier {
  privateKey: KeyObject;
}

function signerFromSeed(name: string, seed: Buffer): Signer {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
  const key = createPublicKey(privateKey);
  const publicKey = key.export({ format: "der", type: "spki" }).subarray(-32);
  return { name, id: keyId(name, publicKey), publicKey, key, privateKey };
}

/** A new Ed25519 signer key named `name`. */
export function generateSigner(name: string): { signer: Signer; text: string } {
  if (!isValidKeyName(name)) throw new NoteError(`not a valid key name: ${JSON.stringify(name)}`);
  const { privateKey } = generateKeyPairSync("ed25519");
  const seed = privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32);
  const signer = signerFromSeed(name, seed);
  const text = `PRIVATE+KEY+${name}+${signer.id.toString("hex")}+${Buffer.concat([Buffer.from([ALG_ED25519]), seed]).toString("base64")}`;
  return { signer, text };
}

/** `PRIVATE+KEY+<name>+<id>+<base64(0x01 ‖ seed)>` (white space around it ignored). */
export function parseSignerKey(text: string): Signer {
  const parts = chop(text.trim(), 5);
  if (parts.length !== 5 || parts[0] !== "PRIVATE" || parts[1] !== "KEY") {
    throw new NoteError("not a signer key: expected PRIVATE+KEY+<name>+<id>+<key>");
  }
  const [, , name = "", hex = "", b64 = ""] = parts;
  const raw = decodeBase64(b64);
  if (!isValidKeyName(name) || !/^[0-9a-f]{8}$/.test(hex) || raw?.length !== 33 || raw[0] !== ALG_ED25519) {
    throw new NoteError("not a signer key: expected PRIVATE+KEY+<name>+<8 hex digits>+<base64 of 0x01 and a 32-byte Ed25519 seed>");
  }
  const signer = signerFromSeed(name, raw.subarray(1));
  if (signer.id.toString("hex") !== hex) throw new NoteError("signer key: the key id does not match the name and key");
  return signer;
}

export const formatVerifierKey = (v: Pick<Verifier, "name" | "id" | "publicKey">): string =>
  `${v.name}+${v.id.toString("hex")}+${Buffer.concat([Buffer.from([ALG_ED25519]), v.publicKey]).toString("base64")}`;

/** `<name>+<id>+<base64(0x01 ‖ public key)>`. */
export function parseVerifierKey(text: string): Verifier {
  const parts = chop(text.trim(), 3);
  const [name = "", hex = "", b64 = ""] = parts;
  const raw = decodeBase64(b64);
  if (parts.length !== 3 || !isValidKeyName(name) || !/^[0-9a-f]{8}$/.test(hex) || raw?.length !== 33 || raw[0] !== ALG_ED25519) {
    throw new NoteError("not a verifier key: expected <name>+<8 hex digits>+<base64 of 0x01 and a 32-byte Ed25519 public key>");
  }
  const publicKey = raw.subarray(1);
  const id = keyId(name, publicKey);
  if (id.toString("hex") !== hex) throw new NoteError("verifier key: the key id does not match the name and key");
  const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: "der", type: "spki" });
  return { name, id, publicKey, key };
}

/** Up to `n` fields split at '+': the last takes the rest (base64 holds '+' too), as Go's note does. */
function chop(s: string, n: number): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < n - 1) {
    const at = rest.indexOf("+");
    if (at < 0) break;
    out.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  out.push(rest);
  return out;
}

/** Strict standard padded base64, or undefined. */
function decodeBase64(s: string): Buffer | undefined {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) return undefined;
  return Buffer.from(s, "base64");
}

/** `text` (ending in a newline) signed: the text, a blank line, one signature line. */
export function signNote(text: string, signer: Signer): string {
  if (!text.endsWith("\n")) throw new NoteError("note text must end in a newline");
  const sig = sign(null, Buffer.from(text, "utf8"), signer.privateKey);
  return `${text}\n— ${signer.name} ${Buffer.concat([signer.id, sig]).toString("base64")}\n`;
}

/**
 * The text of a signed note, once a signature by `verifier` checks; a
 * NoteError when the note is malformed or no signature of that key is
 * valid (signatures by other keys are ignored, as in Go's note.Open).
 */
export function openNote(note: string, verifier: Verifier): string {
  const cut = note.lastIndexOf("\n\n");
  if (cut < 0 || !note.endsWith("\n")) throw new NoteError("malformed note: no blank line before the signatures");
  const text = note.slice(0, cut + 1);
  const lines = note.slice(cut + 2, -1).split("\n");
  let known = false;
  for (const line of lines) {
    const m = /^— (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new NoteError("malformed note: a signature line is not '— <name> <base64>'");
    const raw = decodeBase64(m[2] as string);
    if (!raw || raw.length < 5) throw new NoteError("malformed note: a signature is too short");
    if (m[1] !== verifier.name || !raw.subarray(0, 4).equals(verifier.id)) continue;
    known = true;
    if (verify(null, Buffer.from(text, "utf8"), verifier.key, raw.subarray(4))) return text;
  }
  throw new NoteError(known ? "the note's signature does not verify with the key" : `the note is not signed by the key ${verifier.name}`);
}

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
}

/** The C2SP tlog-checkpoint body: origin, size, base64 root, each on its own line. */
export const checkpointText = (c: Checkpoint): string => `${c.origin}\n${c.size}\n${c.root.toString("base64")}\n`;

/** A checkpoint's text (extension lines after the root are allowed and ignored). */
export function parseCheckpoint(text: string): Checkpoint {
  const [origin = "", size = "", root = ""] = text.split("\n");
  const hash = decodeBase64(root);
  if (origin === "" || !/^(0|[1-9][0-9]{0,15})$/.test(size) || hash?.length !== 32) {
    throw new NoteError("malformed checkpoint: expected <origin>, <size> and <base64 root hash> on three lines");
  }
  return { origin, size: Number(size), root: hash };
}
