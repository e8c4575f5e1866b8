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

/**
 * An event's leaf: the RFC 8785 canonical JSON of its ten fields, with the
 * values the API returns (id as a decimal string, times as printed), UTF-8.
 */
export function leafOf(e: LeafEvent): Buffer {
  const picked: Record<string, unknown> = {};
  for (const f of LEAF_FIELDS) picked[f] = e[f];
  const text = canonicalize(picked);
  if (text === undefined) throw new Error(`audit event ${e.id} has no canonical form`);
  return Buffer.from(text, "utf8");
}

/**
 * The line /entries shows for an entry whose event is no longer in the
 * store (removed behind the registry's back): not a leaf any event could
 * have, so its hash differs from the tree's and `audit verify` names it.
 */
export const missingLeaf = (id: string): Buffer => Buffer.from(canonicalize({ id, missing: true }) as string, "utf8");
