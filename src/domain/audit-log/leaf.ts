import canonicalize from "canonicalize";
import type { AuditEvent } from "../../schemas/audit.js";

/** The fields a leaf holds, in SPEC's order (RFC 8785 sorts them anyway). */
export const LEAF_FIELDS = [
  "id",
  "tenant_id",
  "product",
  "actor_id",
  "action",
  "target_type",
  "target_id",
  "metadata",
  "occurred_at",
  "created_at",
] as const;

export type LeafEvent = Pick<AuditEvent, (typeof LEAF_FIELDS)[number]>;

/** The fields in RFC 8785 order (UTF-16 code units; these are ASCII), each with its JSON key. */
const SORTED = [...LEAF_FIELDS].sort().map((f) => [f, `"${f}":`] as const);

/**
 * An event's leaf: the RFC 8785 canonical JSON of its ten fields, with the
 * values the API returns (id as a decimal string, times as printed), UTF-8.
 * The package canonicalizes every value; the object around them has fixed
 * ASCII keys, so it is written here in their canonical order. That is the
 * package's own output for the whole object (test/audit-log/leaf.test.ts),
 * without its per-object key sort and checks, which made it half the
 * cost of the sequencer and of GET /v1/audit/log/entries.
 */
export function leafOf(e: LeafEvent): Buffer {
  let text = "{";
  for (const [f, key] of SORTED) {
    const value = e[f];
    // The package would omit an undefined member; an event has none (null instead).
    if (value === undefined) throw new Error(`audit event ${e.id} has no ${f}`);
    const json = canonicalize(value);
    if (json === undefined) throw new Error(`audit event ${e.id} has no canonical form`);
    text += text.length === 1 ? key + json : `,${key}${json}`;
  }
  return Buffer.from(`${text}}`, "utf8");
}

/**
 * The line /entries shows for an entry whose event is no longer in the
 * store (removed behind the registry's back): not a leaf any event could
 * have, so its hash differs from the tree's and `audit verify` names it.
 */
export const missingLeaf = (id: string): Buffer => Buffer.from(canonicalize({ id, missing: true }) as string, "utf8");
