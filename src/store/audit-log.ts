import type { Queryable } from "./db.js";

// SQL of the verifiable audit log (0009_audit_log.sql). Indexes are JS
// numbers: 2^53 entries is beyond any audit trail.

/** Lock key (transaction-scoped) held by the instance sequencing now: 'L' in the top byte. */
const SEQUENCER_LOCK = (0x4cn << 56n).toString();

export async function auditLogTryLockSequencer(q: Queryable): Promise<boolean> {
  const [r] = await q.query<{ locked: boolean }>("SELECT pg_try_advisory_xact_lock($1::bigint) AS locked", [SEQUENCER_LOCK]);
  return r?.locked === true;
}

export async function auditLogStoreId(q: Queryable): Promise<string> {
  const [r] = await q.query<{ store_id: string }>("SELECT store_id FROM audit_log_store");
  if (!r) throw new Error("audit_log_store has no row: migration 0009 did not run");
  return r.store_id;
}

/** The signer key kept in the store: `candidate` when none was kept yet (the first writer wins). */
export async function auditLogKeepSigner(q: Queryable, candidate: string): Promise<string> {
  await q.query("INSERT INTO audit_log_signer (signer_key) VALUES ($1) ON CONFLICT (singleton) DO NOTHING", [candidate]);
  const [r] = await q.query<{ signer_key: string }>("SELECT signer_key FROM audit_log_signer");
  if (!r) throw new Error("audit_log_signer has no row after the insert");
  return r.signer_key;
}

export interface LogHead {
  /** Entries sequenced. */
  size: number;
  /** The id of the last sequenced event ("0" before the first). */
  lastId: string;
}

export async function auditLogHead(q: Queryable): Promise<LogHead> {
  const [r] = await q.query<{ end_index: string; last_id: string }>(
    "SELECT end_index::text AS end_index, last_id::text AS last_id FROM audit_log_leaves ORDER BY start_index DESC LIMIT 1",
  );
  return r ? { size: Number(r.end_index), lastId: r.last_id } : { size: 0, lastId: "0" };
}

export interface Segment {
  start: number;
  ids: string[];
  hashes: Buffer[];
}

interface SegmentRow {
  [k: string]: unknown;
  start_index: string;
  event_ids: Uint8Array;
  hashes: Uint8Array;
}

const toSegment = (r: SegmentRow): Segment => {
  const ids = Buffer.from(r.event_ids);
  const hashes = Buffer.from(r.hashes);
  const n = ids.length / 8;
  return {
    start: Number(r.start_index),
    ids: Array.from({ length: n }, (_, i) => ids.readBigInt64BE(i * 8).toString()),
    hashes: Array.from({ length: n }, (_, i) => hashes.subarray(i * 32, i * 32 + 32)),
  };
};

/** The segments of the given blocks of 256 entries (block b: entries 256·b … 256·b + 255), in one query. */
export async function auditLogBlockSegments(q: Queryable, blocks: readonly number[]): Promise<Segment[]> {
  if (blocks.length === 0) return [];
  const rows = await q.query<SegmentRow>(
    `SELECT l.start_index::text AS start_index, l.event_ids, l.hashes
       FROM unnest($1::bigint[]) AS b(block)
       JOIN audit_log_leaves l ON l.start_index >= b.block * 256 AND l.start_index < (b.block + 1) * 256`,
    [blocks],
  );
  return rows.map(toSegment);
}

/**
 * The event ids of entries start … end−1, in log order: only the ids
 * column of their segments (GET /v1/audit/log/entries needs no hashes).
 */
export async function auditLogEntryIds(q: Queryable, start: number, end: number): Promise<string[]> {
  const rows = await q.query<{ start_index: string; event_ids: Uint8Array }>(
    `SELECT start_index::text AS start_index, event_ids FROM audit_log_leaves
      WHERE start_index > $1::bigint - 256 AND start_index < $2::bigint AND end_index > $1::bigint
      ORDER BY audit_log_leaves.start_index`,
    [start, end],
  );
  const ids: string[] = [];
  for (const r of rows) {
    const buf = Buffer.from(r.event_ids.buffer, r.event_ids.byteOffset, r.event_ids.byteLength);
    const first = Number(r.start_index);
    for (let i = Math.max(0, start - first); i < buf.length / 8 && first + i < end; i++) ids.push(buf.readBigInt64BE(i * 8).toString());
  }
  return ids;
}

/** Append entries starting at `start` (one row per 256-aligned run), with the new complete nodes and the checkpoint. */
export async function auditLogAppend(
  q: Queryable,
  start: number,
  ids: readonly string[],
  hashes: readonly Buffer[],
  nodes: readonly { level: number; index: number; hash: Buffer }[],
  checkpoint: { size: number; root: Buffer; note: string },
): Promise<void> {
  const starts: number[] = [];
  const ends: number[] = [];
  const lastIds: string[] = [];
  const idBlobs: Buffer[] = [];
  const hashBlobs: Buffer[] = [];
  for (let i = 0; i < ids.length; ) {
    const s = start + i;
    const e = Math.min(start + ids.length, (Math.floor(s / 256) + 1) * 256);
    const n = e - s;
    const idBuf = Buffer.alloc(8 * n);
    for (let j = 0; j < n; j++) idBuf.writeBigInt64BE(BigInt(ids[i + j] as string), 8 * j);
    starts.push(s);
    ends.push(e);
    lastIds.push(ids[i + n - 1] as string);
    idBlobs.push(idBuf);
    hashBlobs.push(Buffer.concat(hashes.slice(i, i + n)));
    i += n;
  }
  await q.query(
    `INSERT INTO audit_log_leaves (start_index, end_index, last_id, event_ids, hashes)
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[], $5::bytea[])`,
    [starts, ends, lastIds, idBlobs, hashBlobs],
  );
  if (nodes.length > 0) {
    await q.query("INSERT INTO audit_log_nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])", [
      nodes.map((n) => n.level),
      nodes.map((n) => n.index),
      nodes.map((n) => n.hash),
    ]);
  }
  await q.query("INSERT INTO audit_log_checkpoints (size, root, note) VALUES ($1, $2, $3)", [
    checkpoint.size,
    checkpoint.root,
    checkpoint.note,
  ]);
}

/** Stored complete-subtree hashes (level ≥ 8), keyed "level/index". */
export async function auditLogNodes(q: Queryable, refs: readonly { level: number; index: number }[]): Promise<Map<string, Buffer>> {
  if (refs.length === 0) return new Map();
  const rows = await q.query<{ level: number; idx: string; hash: Uint8Array }>(
    `SELECT n.level, n.idx::text AS idx, n.hash FROM audit_log_nodes n
       JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx`,
    [refs.map((r) => r.level), refs.map((r) => r.index)],
  );
  return new Map(rows.map((r) => [`${r.level}/${r.idx}`, Buffer.from(r.hash)]));
}

export interface StoredCheckpoint {
  size: number;
  root: Buffer;
  note: string;
  signed_at: Date;
}

type CheckpointRow = { size: string; root: Uint8Array; note: string; signed_at: Date };
const toCheckpoint = (r: CheckpointRow): StoredCheckpoint => ({
  size: Number(r.size),
  root: Buffer.from(r.root),
  note: r.note,
  signed_at: r.signed_at,
});

/** The newest checkpoint, or one of exactly `size`. */
export async function auditLogCheckpoint(q: Queryable, size?: number): Promise<StoredCheckpoint | undefined> {
  const rows = await q.query<CheckpointRow>(
    size === undefined
      ? "SELECT size::text AS size, root, note, signed_at FROM audit_log_checkpoints ORDER BY audit_log_checkpoints.size DESC LIMIT 1"
      : "SELECT size::text AS size, root, note, signed_at FROM audit_log_checkpoints WHERE size = $1",
    size === undefined ? [] : [size],
  );
  return rows[0] ? toCheckpoint(rows[0]) : undefined;
}

/**
 * The log_index of each of `ids` that is sequenced. Ids ascend with the
 * index, so the segments from the one holding the lowest id to the one
 * holding the highest are all that can hold them.
 */
export async function auditLogIndexes(q: Queryable, ids: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (ids.length === 0) return out;
  let min = BigInt(ids[0] as string);
  let max = min;
  for (const id of ids) {
    const v = BigInt(id);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const rows = await q.query<SegmentRow>(
    `SELECT start_index::text AS start_index, event_ids, ''::bytea AS hashes FROM audit_log_leaves
      WHERE last_id >= $1::bigint
        AND last_id <= coalesce((SELECT min(last_id) FROM audit_log_leaves WHERE last_id >= $2::bigint), 9223372036854775807)`,
    [min.toString(), max.toString()],
  );
  const wanted = new Set(ids);
  for (const r of rows) {
    const buf = Buffer.from(r.event_ids);
    const start = Number(r.start_index);
    for (let i = 0; i < buf.length / 8; i++) {
      const id = buf.readBigInt64BE(i * 8).toString();
      if (wanted.has(id)) out.set(id, start + i);
    }
  }
  return out;
}
