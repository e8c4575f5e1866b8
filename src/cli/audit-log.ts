import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import type { Writable } from "node:stream";
import { RegistryError } from "@tenant-registry/client";
import type { Command } from "commander";
import { checkConsistency, checkInclusion, leafHash, TreeBuilder } from "../domain/audit-log/merkle.js";
import {
  type Checkpoint,
  formatVerifierKey,
  generateSigner,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  type Verifier,
} from "../domain/audit-log/note.js";
import { type ClientOptions, clientCommand, registryUrl, tokenOf, UsageError } from "./context.js";

/** Entries per /v1/audit/log/entries request (the server's maximum). */
const CHUNK = 10_000;

/** Plain GETs of the log's text and JSON answers; problems become RegistryErrors, as with the typed client. */
function logClient(o: ClientOptions) {
  const base = registryUrl(o.url);
  const token = tokenOf(o);
  const get = async (path: string): Promise<Response> => {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) {
      const body = await res.text();
      let problem: RegistryError["problem"];
      try {
        problem = JSON.parse(body);
      } catch {
        problem = { type: "about:blank", title: res.statusText, status: res.status, detail: body.slice(0, 200), code: "internal" };
      }
      throw new RegistryError(problem);
    }
    return res;
  };
  return {
    text: async (path: string) => (await get(path)).text(),
    bytes: async (path: string) => Buffer.from(await (await get(path)).arrayBuffer()),
    json: async <T>(path: string) => (await (await get(path)).json()) as T,
  };
}
type LogClient = ReturnType<typeof logClient>;

/** Entries requests in flight at once: the server builds the next chunks while this process hashes one. */
const AHEAD = 4;

/**
 * The entries start … end−1 in CHUNK-sized bodies, in order, with up to
 * AHEAD requests in flight; a failed request fails the read when its turn
 * comes (the others are dropped with the process).
 */
async function* entryChunks(api: LogClient, start: number, end: number): AsyncGenerator<{ start: number; end: number; body: Buffer }> {
  const queue: { start: number; end: number; body: Promise<Buffer> }[] = [];
  let next = start;
  const fill = () => {
    while (queue.length < AHEAD && next < end) {
      const s = next;
      const e = Math.min(s + CHUNK, end);
      const body = api.bytes(`/v1/audit/log/entries?start=${s}&end=${e}`);
      body.catch(() => {}); // awaited in turn below; unawaited, a failure would be an unhandled rejection first
      queue.push({ start: s, end: e, body });
      next = e;
    }
  };
  fill();
  for (let item = queue.shift(); item; item = queue.shift()) {
    fill();
    yield { start: item.start, end: item.end, body: await item.body };
  }
}

/** Lines of an entries body, each without its newline (the body ends in one). */
function splitLeaves(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (let at = body.indexOf(10); at >= 0; at = body.indexOf(10, from)) {
    out.push(body.subarray(from, at));
    from = at + 1;
  }
  if (from !== body.length) throw new Error("the entries do not end with a newline");
  return out;
}

function readVerifier(o: { key?: string; keyFile?: string }): Verifier {
  if ((o.key === undefined) === (o.keyFile === undefined))
    throw new UsageError("give the verifier key with --key or --key-file (one of them)");
  try {
    return parseVerifierKey(o.key ?? readFileSync(o.keyFile as string, "utf8"));
  } catch (err) {
    throw new UsageError(`${o.key !== undefined ? "--key" : `--key-file ${o.keyFile}`}: ${(err as Error).message}`);
  }
}

/** A signed checkpoint, checked against the key; `what` names it in errors. */
function openCheckpoint(note: string, key: Verifier, what: string): Checkpoint {
  let text: string;
  try {
    text = openNote(note, key);
  } catch (err) {
    throw new Error(`${what}: refused: ${(err as Error).message}`);
  }
  const c = parseCheckpoint(text);
  if (c.origin !== key.name) throw new Error(`${what}: its origin ${c.origin} is not the key's name ${key.name}`);
  return c;
}

const b64 = (b: Buffer) => b.toString("base64");

/**
 * Which entry first differs from the tree the checkpoint signs. Each
 * boundary's own root is checked against the signed root with a
 * consistency proof (a binary search over the chunk boundaries, then over
 * the entries of the bad chunk), and the entry found is confirmed with its
 * inclusion proof.
 */
async function firstDifference(api: LogClient, cp: Checkpoint, snapshots: TreeBuilder[]): Promise<string> {
  const prefixMatches = async (tree: TreeBuilder) => {
    if (tree.size === 0) return true;
    const { hashes } = await api.json<{ hashes: string[] }>(`/v1/audit/log/consistency?from=${tree.size}&to=${cp.size}`);
    return checkConsistency(
      tree.size,
      cp.size,
      tree.root(),
      cp.root,
      hashes.map((h) => Buffer.from(h, "base64")),
    );
  };
  // snapshots[k] is the tree of the first k·CHUNK entries (the last one: all of them).
  let lo = 0;
  let hi = snapshots.length - 1;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await prefixMatches(snapshots[mid] as TreeBuilder)) lo = mid;
    else hi = mid;
  }
  const start = (snapshots[lo] as TreeBuilder).size;
  const end = (snapshots[hi] as TreeBuilder).size;
  const leaves = splitLeaves(await api.bytes(`/v1/audit/log/entries?start=${start}&end=${end}`)).map(leafHash);
  const prefix = (n: number) => {
    const t = (snapshots[lo] as TreeBuilder).clone();
    for (const h of leaves.slice(0, n)) t.push(h);
    return t;
  };
  let a = 0;
  let b = leaves.length;
  while (b - a > 1) {
    const mid = Math.floor((a + b) / 2);
    if (await prefixMatches(prefix(mid))) a = mid;
    else b = mid;
  }
  const index = start + a;
  const proof = await api.json<{ leaf_hash: string; hashes: string[] }>(`/v1/audit/log/proof?index=${index}&size=${cp.size}`);
  const signed = Buffer.from(proof.leaf_hash, "base64");
  const proven = checkInclusion(
    index,
    cp.size,
    signed,
    proof.hashes.map((h) => Buffer.from(h, "base64")),
    cp.root,
  );
  if (!proven) return `the inclusion proof of entry ${index} failed against the checkpoint's root`;
  const line = splitLeaves(await api.bytes(`/v1/audit/log/entries?start=${index}&end=${index + 1}`))[0];
  let id = "?";
  try {
    id = String((JSON.parse(line?.toString("utf8") ?? "{}") as { id?: unknown }).id ?? "?");
  } catch {}
  return `entry ${index} (event id ${id}) differs from the tree the checkpoint signs: its leaf hash is ${b64(leafHash(line ?? Buffer.alloc(0)))}, the signed tree holds ${b64(signed)}`;
}

export interface VerifyOptions extends ClientOptions {
  key?: string;
  keyFile?: string;
  since?: string;
  save?: string;
  entries?: string;
  checkpoint?: string;
}

export async function verifyOnline(o: VerifyOptions, key: Verifier, out: Writable): Promise<void> {
  const api = logClient(o);
  const note = await api.text("/v1/audit/log/checkpoint");
  const cp = openCheckpoint(note, key, "the newest checkpoint");
  if (o.since !== undefined) {
    const since = openCheckpoint(readFileSync(o.since, "utf8"), key, `--since ${o.since}`);
    if (since.size > cp.size)
      throw new Error(`--since ${o.since} has ${since.size} entries, more than the newest checkpoint's ${cp.size}: the log was cut back`);
    const { hashes } = await api.json<{ hashes: string[] }>(`/v1/audit/log/consistency?from=${since.size}&to=${cp.size}`);
    const ok = checkConsistency(
      since.size,
      cp.size,
      since.root,
      cp.root,
      hashes.map((h) => Buffer.from(h, "base64")),
    );
    if (!ok)
      throw new Error(
        `the consistency proof from the --since checkpoint (size ${since.size}) to the newest (size ${cp.size}) failed: the log was rewritten`,
      );
  }
  const tree = new TreeBuilder();
  const snapshots = [tree.clone()];
  for await (const { start, end, body } of entryChunks(api, 0, cp.size)) {
    const leaves = splitLeaves(body);
    if (leaves.length !== end - start) throw new Error(`entries ${start}-${end - 1}: ${leaves.length} lines for ${end - start} entries`);
    for (const leaf of leaves) tree.push(leafHash(leaf));
    snapshots.push(tree.clone());
  }
  if (!tree.root().equals(cp.root)) throw new Error(`verification failed: ${await firstDifference(api, cp, snapshots)}`);
  if (o.save !== undefined) writeFileSync(o.save, note);
  out.write(`verified ${cp.size} events up to root ${b64(cp.root)} (${cp.origin})\n`);
}

export function verifyOffline(o: VerifyOptions, key: Verifier, out: Writable): void {
  if (o.entries === undefined || o.checkpoint === undefined)
    throw new UsageError("offline verification needs both --entries and --checkpoint");
  if (o.since !== undefined || o.save !== undefined) throw new UsageError("--since and --save are for online verification");
  const cp = openCheckpoint(readFileSync(o.checkpoint, "utf8"), key, `--checkpoint ${o.checkpoint}`);
  const leaves = splitLeaves(readFileSync(o.entries));
  if (leaves.length !== cp.size) throw new Error(`--entries ${o.entries} holds ${leaves.length} entries; the checkpoint signs ${cp.size}`);
  const tree = new TreeBuilder();
  for (const leaf of leaves) tree.push(leafHash(leaf));
  if (!tree.root().equals(cp.root))
    throw new Error(`verification failed: the entries' root ${b64(tree.root())} is not the checkpoint's ${b64(cp.root)}`);
  out.write(`verified ${cp.size} events up to root ${b64(cp.root)} (${cp.origin})\n`);
}

/** `audit export --format leaves`: entries 0 … N−1 of the newest checkpoint, byte for byte. */
export async function exportLeaves(o: ClientOptions, output: Writable): Promise<number> {
  const api = logClient(o);
  const size = Number((await api.text("/v1/audit/log/checkpoint")).split("\n")[1]);
  for await (const { body } of entryChunks(api, 0, size)) {
    if (!output.write(body)) await new Promise((resolve) => output.once("drain", resolve));
  }
  return size;
}

export function auditVerifyCommand(group: Command): void {
  clientCommand(
    group,
    "verify",
    "Verify the audit log: check the newest checkpoint's signature, recompute its root from every entry, and check it extends --since.",
    "tenant-registry audit verify --key-file registry.vkey --since last.checkpoint --save last.checkpoint",
  )
    .option("--key <key>", "the verifier key (<name>+<id>+<key>, from GET /v1/audit/log/key, obtained out of band)")
    .option("--key-file <file>", "a file holding the verifier key")
    .option("--since <file>", "a checkpoint verified earlier: the newest must extend it")
    .option("--save <file>", "write the newest checkpoint here once it verified")
    .option("--entries <file>", "offline: an export (audit export --format leaves)")
    .option("--checkpoint <file>", "offline: the checkpoint the export was taken at")
    .action(async (o: VerifyOptions) => {
      const key = readVerifier(o);
      if (o.entries !== undefined || o.checkpoint !== undefined) verifyOffline(o, key, process.stdout);
      else await verifyOnline(o, key, process.stdout);
    });
}

export function auditLogCommands(program: Command): void {
  const group = program
    .command("audit-log")
    .description("Keys for the verifiable audit log (verify it with `tenant-registry audit verify`).")
    .addHelpText("after", "\nExample:\n  tenant-registry audit-log keygen --name example.com/audit > signer.key");
  group
    .command("keygen")
    .description("Print a new signer key (for AUDIT_LOG_KEY_FILE; keep it secret) and, on the next line, its verifier key.")
    .option("--name <name>", "the key's name, which is the log's origin (default tenant-registry/<random id>)")
    .addHelpText("after", "\nExample:\n  tenant-registry audit-log keygen --name example.com/audit > signer.key")
    .action((o: { name?: string }) => {
      const name = o.name ?? `tenant-registry/${randomBytes(16).toString("hex")}`;
      let made: ReturnType<typeof generateSigner>;
      try {
        made = generateSigner(name);
      } catch (err) {
        throw new UsageError(`--name: ${(err as Error).message} (no white space, no '+')`);
      }
      process.stdout.write(`${made.text}\n${formatVerifierKey(made.signer)}\n`);
    });
}
