import { auditLogBlockSegments, auditLogNodes } from "../../store/audit-log.js";
import type { Queryable } from "../../store/db.js";
import { type NodeHash, type NodeRef, nodesNeeded, subtreeOf } from "./merkle.js";

/** Complete subtrees of this level and above are stored; smaller ones are computed from ≤ 256 leaf hashes. */
export const STORED_LEVEL = 8;
export const BLOCK = 2 ** STORED_LEVEL;

const key = (level: number, index: number) => `${level}/${index}`;

/**
 * A read of the stored tree: `run(compute)` finds the nodes `compute`
 * needs, fetches them (stored nodes in one query, leaf hashes by block),
 * then runs it. `leaves` and `nodes` can be seeded with hashes not stored
 * yet (the sequencer's round).
 */
export class TreeView {
  readonly leaves = new Map<number, Buffer>();
  readonly nodes = new Map<string, Buffer>();
  private blocks = new Set<number>();

  constructor(
    private readonly q: Queryable,
    /** Entries that may be read (the tree size the caller works within). */
    private readonly size: number,
  ) {}

  readonly node: NodeHash = (level, index) => {
    const k = key(level, index);
    const known = this.nodes.get(k);
    if (known) return known;
    if (level > STORED_LEVEL) throw new Error(`audit log: node ${k} is not stored`);
    const first = index * 2 ** level;
    const hashes: Buffer[] = [];
    for (let i = first; i < first + 2 ** level; i++) {
      const h = this.leaves.get(i);
      if (!h) throw new Error(`audit log: leaf ${i} is not stored`);
      hashes.push(h);
    }
    const h = subtreeOf(hashes);
    this.nodes.set(k, h);
    return h;
  };

  async load(refs: readonly NodeRef[]): Promise<void> {
    const stored: NodeRef[] = [];
    const blocks = new Set<number>();
    for (const r of refs) {
      if (this.nodes.has(key(r.level, r.index))) continue;
      if (r.level > STORED_LEVEL) stored.push(r);
      else if (r.level === STORED_LEVEL) stored.push(r);
      else blocks.add(Math.floor((r.index * 2 ** r.level) / BLOCK));
    }
    if (stored.length > 0) {
      for (const [k, h] of await auditLogNodes(this.q, stored)) this.nodes.set(k, h);
      // A level-8 node not stored yet (the sequencer's own round) is computed from its block.
      for (const r of stored) if (r.level === STORED_LEVEL && !this.nodes.has(key(r.level, r.index))) blocks.add(r.index);
    }
    await this.loadBlocks([...blocks]);
  }

  async loadBlock(b: number): Promise<void> {
    await this.loadBlocks([b]);
  }

  /** The leaf hashes of these blocks (within the size), all in one query. */
  private async loadBlocks(wanted: number[]): Promise<void> {
    const blocks = wanted.filter((b) => !this.blocks.has(b));
    if (blocks.length === 0) return;
    for (const b of blocks) this.blocks.add(b);
    for (const s of await auditLogBlockSegments(this.q, blocks)) {
      s.hashes.forEach((h, i) => {
        if (s.start + i < this.size && !this.leaves.has(s.start + i)) this.leaves.set(s.start + i, h);
      });
    }
  }

  async run<T>(compute: (node: NodeHash) => T): Promise<T> {
    await this.load(nodesNeeded(compute));
    return compute(this.node);
  }
}
