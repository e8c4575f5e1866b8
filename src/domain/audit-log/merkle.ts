import { createHash } from "node:crypto";

// Glossary: the log is an RFC 6962 / RFC 9162 Merkle tree. A *leaf* is an
// entry's bytes; its *leaf hash* is SHA-256(0x00 ‖ leaf); an interior node is
// SHA-256(0x01 ‖ left ‖ right). MTH(lo, hi) is the hash of the tree over
// entries lo … hi−1. A *node* (level, index) is the complete subtree over
// entries index·2^level … (index+1)·2^level − 1; every MTH is computed from
// such nodes (the split points of RFC 6962 fall on their boundaries).

export const HASH_SIZE = 32;
const LEAF_PREFIX = Buffer.from([0]);
const NODE_PREFIX = Buffer.from([1]);

export const leafHash = (leaf: Uint8Array): Buffer => createHash("sha256").update(LEAF_PREFIX).update(leaf).digest();
export const nodeHash = (left: Uint8Array, right: Uint8Array): Buffer =>
  createHash("sha256").update(NODE_PREFIX).update(left).update(right).digest();

/** The largest power of two smaller than n (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export interface NodeRef {
  level: number;
  index: number;
}
/** The hash of a complete subtree; must be inside the tree the caller works on. */
export type NodeHash = (level: number, index: number) => Buffer;

/** MTH over entries lo … hi−1 (hi > lo), from complete-subtree hashes. */
export function rangeHash(lo: number, hi: number, node: NodeHash): Buffer {
  const n = hi - lo;
  if ((n & (n - 1)) === 0 && lo % n === 0) return node(Math.log2(n), lo / n);
  const k = split(n);
  return nodeHash(rangeHash(lo, lo + k, node), rangeHash(lo + k, hi, node));
}

/** RFC 6962 §2.1.1 PATH(m, D[lo:hi]): the inclusion proof of entry `index`, leaf side first. */
export function inclusionProof(index: number, size: number, node: NodeHash): Buffer[] {
  const out: Buffer[] = [];
  const path = (m: number, lo: number, hi: number) => {
    const n = hi - lo;
    if (n === 1) return;
    const k = split(n);
    if (m < k) {
      path(m, lo, lo + k);
      out.push(rangeHash(lo + k, hi, node));
    } else {
      path(m - k, lo + k, hi);
      out.push(rangeHash(lo, lo + k, node));
    }
  };
  path(index, 0, size);
  return out;
}

/** RFC 6962 §2.1.2 PROOF(m, D[n]): the consistency proof between trees of sizes m and n (1 ≤ m ≤ n). */
export function consistencyProof(m: number, n: number, node: NodeHash): Buffer[] {
  const out: Buffer[] = [];
  const sub = (mm: number, lo: number, hi: number, whole: boolean) => {
    const len = hi - lo;
    if (mm === len) {
      if (!whole) out.push(rangeHash(lo, hi, node));
      return;
    }
    const k = split(len);
    if (mm <= k) {
      sub(mm, lo, lo + k, whole);
      out.push(rangeHash(lo + k, hi, node));
    } else {
      sub(mm - k, lo + k, hi, false);
      out.push(rangeHash(lo, lo + k, node));
    }
  };
  sub(m, 0, n, true);
  return out;
}

/**
 * The nodes `compute` reads, found by running it once with placeholder
 * hashes: the proof's shape depends only on the indexes, so a caller can
 * fetch exactly these (in one query) and run it again for real.
 */
export function nodesNeeded(compute: (node: NodeHash) => unknown): NodeRef[] {
  const seen = new Map<string, NodeRef>();
  const zero = Buffer.alloc(HASH_SIZE);
  compute((level, index) => {
    seen.set(`${level}/${index}`, { level, index });
    return zero;
  });
  return [...seen.values()];
}

/** The hash of leaves[0 … length−1] taken as a complete subtree (length a power of two). */
export function subtreeOf(leaves: readonly Buffer[]): Buffer {
  let level = [...leaves];
  while (level.length > 1) {
    const up: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) up.push(nodeHash(level[i] as Buffer, level[i + 1] as Buffer));
    level = up;
  }
  const root = level[0];
  if (!root) throw new Error("subtreeOf: no leaves");
  return root;
}

/**
 * RFC 9162 §2.1.3.2: does `proof` show that `leaf` (a leaf hash) is entry
 * `index` of the tree of `size` with root `root`? Used by `audit verify`.
 */
export function checkInclusion(index: number, size: number, leaf: Buffer, proof: readonly Buffer[], root: Buffer): boolean {
  if (index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 9162 §2.1.4.2: does `proof` show the tree (size1, root1) is a prefix of (size2, root2)? */
export function checkConsistency(size1: number, size2: number, root1: Buffer, root2: Buffer, proof: readonly Buffer[]): boolean {
  if (size1 < 1 || size1 > size2) return false;
  if (size1 === size2) return proof.length === 0 && root1.equals(root2);
  let path = [...proof];
  if ((size1 & (size1 - 1)) === 0) path = [root1, ...path];
  if (path.length === 0) return false;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0] as Buffer;
  let sr = path[0] as Buffer;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return fr.equals(root1) && sr.equals(root2) && sn === 0;
}

/**
 * The root of a log read in order, one leaf hash at a time, in O(log n)
 * memory: the hashes of the complete subtrees the entries so far make up
 * (a "compact range" from 0), largest first.
 */
export class TreeBuilder {
  private stack: { size: number; hash: Buffer }[] = [];
  size = 0;

  push(leaf: Buffer): void {
    let item = { size: 1, hash: leaf };
    for (let top = this.stack.at(-1); top && top.size === item.size; top = this.stack.at(-1)) {
      this.stack.pop();
      item = { size: top.size * 2, hash: nodeHash(top.hash, item.hash) };
    }
    this.stack.push(item);
    this.size++;
  }

  root(): Buffer {
    const last = this.stack.at(-1);
    if (!last) throw new Error("the tree is empty");
    let r = last.hash;
    for (let i = this.stack.length - 2; i >= 0; i--) r = nodeHash((this.stack[i] as { hash: Buffer }).hash, r);
    return r;
  }

  clone(): TreeBuilder {
    const t = new TreeBuilder();
    t.stack = [...this.stack];
    t.size = this.size;
    return t;
  }
}
