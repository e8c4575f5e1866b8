import { readFileSync } from "node:fs";
import type { FastifyBaseLogger } from "fastify";
import { ConfigError } from "../../config.js";
import type { AuditEvent } from "../../schemas/audit.js";
import { auditFindBetween, auditSettledAfter } from "../../store/audit.js";
import {
  auditLogAppend,
  auditLogCheckpoint,
  auditLogEntryIds,
  auditLogHead,
  auditLogKeepSigner,
  auditLogStoreId,
  auditLogTryLockSequencer,
  type StoredCheckpoint,
} from "../../store/audit-log.js";
import type { Db, Queryable } from "../../store/db.js";
import { AppError, invalid, notFound } from "../errors.js";
import { leafOf, missingLeaf } from "./leaf.js";
import { consistencyProof, inclusionProof, leafHash, nodeHash, rangeHash } from "./merkle.js";
import {
  checkpointText,
  formatVerifierKey,
  generateSigner,
  isValidKeyName,
  parseCheckpoint,
  parseSignerKey,
  type Signer,
  signNote,
} from "./note.js";
import { BLOCK, STORED_LEVEL, TreeView } from "./tree.js";

export interface AuditLogSettings {
  /** AUDIT_LOG_ORIGIN. */
  origin: string | undefined;
  /** AUDIT_LOG_KEY_FILE. */
  keyFile: string | undefined;
}

export interface AuditLogIdentity {
  origin: string;
  signer: Signer;
  verifierKey: string;
}

/**
 * The log's origin and signer: the key from AUDIT_LOG_KEY_FILE, else the
 * one generated on the first start and kept in the store. The origin is
 * the key's name; a setting that contradicts the key, or the origin of
 * checkpoints already signed, stops the start (verifiers would otherwise
 * see a different log).
 */
export async function loadAuditLogIdentity(db: Db, s: AuditLogSettings): Promise<AuditLogIdentity> {
  if (s.origin !== undefined && !isValidKeyName(s.origin)) {
    throw new ConfigError(`AUDIT_LOG_ORIGIN=${JSON.stringify(s.origin)}: expected a note key name (not empty, no white space, no '+')`);
  }
  let signer: Signer;
  if (s.keyFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(s.keyFile, "utf8");
    } catch (err) {
      throw new ConfigError(`AUDIT_LOG_KEY_FILE=${s.keyFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    }
    try {
      signer = parseSignerKey(text);
    } catch (err) {
      // The message never quotes the file: it holds a private key.
      throw new ConfigError(
        `AUDIT_LOG_KEY_FILE=${s.keyFile}: ${(err as Error).message}; make one with \`tenant-registry audit-log keygen\``,
      );
    }
    if (s.origin !== undefined && s.origin !== signer.name) {
      throw new ConfigError(
        `AUDIT_LOG_ORIGIN=${s.origin} differs from the name of the key in AUDIT_LOG_KEY_FILE (${signer.name}): the origin is the key's name`,
      );
    }
  } else {
    const origin = s.origin ?? `tenant-registry/${await auditLogStoreId(db)}`;
    signer = parseSignerKey(await auditLogKeepSigner(db, generateSigner(origin).text));
    if (signer.name !== origin) {
      throw new ConfigError(
        `AUDIT_LOG_ORIGIN=${origin} differs from the origin of the key kept in the store (${signer.name}); unset AUDIT_LOG_ORIGIN, or set AUDIT_LOG_KEY_FILE to a key named ${origin}`,
      );
    }
  }
  const newest = await auditLogCheckpoint(db);
  if (newest) {
    const { origin } = parseCheckpoint(newest.note);
    if (origin !== signer.name) {
      throw new ConfigError(
        `the audit log's checkpoints name the origin ${origin}, but the signer key is named ${signer.name}: use a key named ${origin} (AUDIT_LOG_KEY_FILE, AUDIT_LOG_ORIGIN)`,
      );
    }
  }
  return { origin: signer.name, signer, verifierKey: formatVerifierKey(signer) };
}

/** Events taken per round at most; a full round is followed at once by another. */
const ROUND_MAX = 20_000;
/** Rounds are at least this far apart (one checkpoint per round), and run at least this often while woken. */
const ROUND_GAP_MS = 200;
/** The safety net when a notification is lost, or the horizon held events back. */
const POLL_MS = 500;
const ENTRIES_MAX = 10_000;

export interface SequencerHooks {
  /** After a round that grew the log: entries added, and the commit-to-index lag of its oldest event in seconds. */
  sequenced?(count: number, lagSeconds: number): void;
}

/**
 * The verifiable audit log of one store: the sequencer (rounds that append
 * settled events to the tree and sign a checkpoint) and the reads behind
 * /v1/audit/log/*. See docs/audit-log.md.
 */
export class AuditLog {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private lastRound = 0;
  private stopped = true;

  constructor(
    private readonly db: Db,
    readonly identity: AuditLogIdentity,
    private readonly log: FastifyBaseLogger,
    private readonly hooks: SequencerHooks = {},
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** Audit events committed: sequence soon (rounds stay ROUND_GAP_MS apart). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.schedule(Math.max(0, this.lastRound + ROUND_GAP_MS - Date.now()));
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.running) return;
    this.again = false;
    this.lastRound = Date.now();
    let full = false;
    this.running = (async () => {
      try {
        full = (await this.round()) >= ROUND_MAX;
      } catch (err) {
        this.log.warn({ err: { message: (err as Error).message } }, "audit log sequencing failed; retrying");
      }
    })();
    await this.running;
    this.running = undefined;
    if (this.stopped) return;
    this.schedule(full ? 0 : this.again ? ROUND_GAP_MS : POLL_MS);
  }

  /**
   * One round: under the sequencer lock (one instance at a time), take the
   * events below the audit horizon not sequenced yet, in id order, append
   * their leaves, the complete subtrees they finish and a signed
   * checkpoint, in one transaction. Returns how many were sequenced.
   */
  async round(): Promise<number> {
    return this.db.tx(async (q) => {
      if (!(await auditLogTryLockSequencer(q))) return 0;
      const head = await auditLogHead(q);
      const events = await auditSettledAfter(q, head.lastId, ROUND_MAX);
      if (events.length === 0) return 0;
      const n0 = head.size;
      const n1 = n0 + events.length;
      const view = new TreeView(q, n1);
      const hashes = events.map((e) => leafHash(leafOf(e)));
      if (n0 % BLOCK !== 0) await view.loadBlock(Math.floor(n0 / BLOCK));
      for (const [i, h] of hashes.entries()) view.leaves.set(n0 + i, h);

      const nodes: { level: number; index: number; hash: Buffer }[] = [];
      for (let level = STORED_LEVEL; 2 ** level <= n1; level++) {
        const width = 2 ** level;
        for (let index = Math.floor(n0 / width); (index + 1) * width <= n1; index++) {
          if ((index + 1) * width <= n0) continue;
          const hash =
            level === STORED_LEVEL
              ? view.node(level, index)
              : await view.run((node) => nodeHash(node(level - 1, 2 * index), node(level - 1, 2 * index + 1)));
          view.nodes.set(`${level}/${index}`, hash);
          nodes.push({ level, index, hash });
        }
      }
      const root = await view.run((node) => rangeHash(0, n1, node));
      const note = signNote(checkpointText({ origin: this.identity.origin, size: n1, root }), this.identity.signer);
      await auditLogAppend(
        q,
        n0,
        events.map((e) => e.id),
        hashes,
        nodes,
        { size: n1, root, note },
      );
      const oldest = events[0] as AuditEvent;
      this.hooks.sequenced?.(events.length, Math.max(0, (Date.now() - Date.parse(oldest.created_at)) / 1000));
      return events.length;
    });
  }

  /** The newest checkpoint, or the kept one of exactly `size`; 404 when there is none. */
  async checkpoint(size?: number): Promise<StoredCheckpoint> {
    const c = await auditLogCheckpoint(this.db, size);
    if (!c) throw size === undefined ? notFound("checkpoint (nothing is sequenced yet)") : notFound(`checkpoint of size ${size}`);
    return c;
  }

  private async newestSize(): Promise<number> {
    return (await auditLogCheckpoint(this.db))?.size ?? 0;
  }

  async proof(index: number, size: number | undefined): Promise<{ index: number; size: number; leaf_hash: string; hashes: string[] }> {
    const newest = await this.newestSize();
    const n = size ?? newest;
    if (size !== undefined && size > newest) throw invalid("querystring/size", `must be at most the newest checkpoint's size (${newest})`);
    if (n === 0) throw invalid("querystring/index", "the log is empty");
    if (index >= n) throw invalid("querystring/index", `must be less than size (${n})`);
    const view = new TreeView(this.db, n);
    const [leaf, hashes] = await view.run((node) => [node(0, index), inclusionProof(index, n, node)] as const);
    return { index, size: n, leaf_hash: leaf.toString("base64"), hashes: hashes.map((h) => h.toString("base64")) };
  }

  async consistency(from: number, to: number): Promise<{ from: number; to: number; hashes: string[] }> {
    const newest = await this.newestSize();
    if (from > to) throw invalid("querystring/from", "must be at most to");
    if (to > newest) throw invalid("querystring/to", `must be at most the newest checkpoint's size (${newest})`);
    const view = new TreeView(this.db, to);
    const hashes = await view.run((node) => consistencyProof(from, to, node));
    return { from, to, hashes: hashes.map((h) => h.toString("base64")) };
  }

  /** The leaves of entries start … end−1, each with its newline, built from the events as stored now. */
  async entries(start: number, end: number): Promise<Buffer> {
    if (end <= start) throw invalid("querystring/end", "must be greater than start");
    if (end - start > ENTRIES_MAX) throw invalid("querystring/end", `at most ${ENTRIES_MAX} entries at once (end - start)`);
    const newest = await this.newestSize();
    if (end > newest) throw invalid("querystring/end", `must be at most the newest checkpoint's size (${newest})`);
    return entriesOf(this.db, start, end);
  }
}

const NEWLINE = Buffer.from("\n");

export async function entriesOf(q: Queryable, start: number, end: number): Promise<Buffer> {
  const ids = await auditLogEntryIds(q, start, end);
  if (ids.length !== end - start) throw new AppError("internal", "the audit log's entries are incomplete");
  // Ids ascend in log order; min and max all the same, should a row of the log have been changed behind its back.
  let min = BigInt(ids[0] as string);
  let max = min;
  for (const id of ids) {
    const v = BigInt(id);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const events = await auditFindBetween(q, min.toString(), max.toString());
  const parts: Buffer[] = [];
  for (const id of ids) {
    const e = events.get(id);
    parts.push(e ? leafOf(e) : missingLeaf(id), NEWLINE);
  }
  return Buffer.concat(parts);
}
