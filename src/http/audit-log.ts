import { Type } from "@sinclair/typebox";
import type { AuditLog } from "../domain/audit-log/log.js";
import { ProblemRef } from "../schemas/common.js";
import type { App } from "./types.js";

const tags = ["audit"];
const errors = { 400: ProblemRef, 401: ProblemRef, 403: ProblemRef, 404: ProblemRef };
const roles = ["admin", "auditor"] as const;
/** Tree sizes and indexes: JSON integers (2^53 entries is beyond any audit trail). */
const Count = (description: string, minimum = 0) => Type.Integer({ minimum, maximum: Number.MAX_SAFE_INTEGER, description });
const Hash = Type.String({
  pattern: "^[A-Za-z0-9+/]{43}=$",
  description: "A SHA-256 hash, standard padded base64 (RFC 4648 §4).",
});

const Proof = Type.Object(
  {
    index: Count("The entry proved."),
    size: Count("The tree size the proof is for.", 1),
    leaf_hash: Hash,
    hashes: Type.Array(Hash, { description: "The RFC 6962 inclusion proof, from the leaf's sibling up." }),
  },
  { title: "AuditLogProof" },
);
const Consistency = Type.Object(
  {
    from: Count("The older tree size.", 1),
    to: Count("The newer tree size.", 1),
    hashes: Type.Array(Hash, { description: "The RFC 6962 consistency proof." }),
  },
  { title: "AuditLogConsistency" },
);

/** GET /v1/audit/log/*: the verifier key, checkpoints, proofs and raw entries (SPEC, "Verifiable audit log"). */
export async function auditLogRoutes(app: App, { log }: { log: AuditLog }): Promise<void> {
  app.get(
    "/v1/audit/log/key",
    {
      schema: {
        tags,
        summary: "The audit log's verifier key",
        description:
          "`<name>+<key id>+<base64 key>` in the format of Go's golang.org/x/mod/sumdb/note. Needs no token: it is public by design. Compare it with one obtained out of band.",
        produces: ["text/plain"],
        response: { 200: Type.String() },
      },
    },
    async (_req, reply) => reply.type("text/plain; charset=utf-8").send(`${log.identity.verifierKey}\n`),
  );

  app.get(
    "/v1/audit/log/checkpoint",
    {
      config: { roles },
      schema: {
        tags,
        summary: "A signed checkpoint of the audit log",
        description:
          "The newest checkpoint (a C2SP tlog-checkpoint signed as a C2SP signed-note), or with `size` the kept checkpoint of exactly that size. 404 when there is none (nothing sequenced yet, or no checkpoint of that size).",
        querystring: Type.Object({ size: Type.Optional(Count("A tree size.", 1)) }, { additionalProperties: false }),
        produces: ["text/plain"],
        response: {
          200: Type.String({
            headers: {
              "Last-Modified": Type.String({ description: "When the registry signed this checkpoint (an HTTP date)." }),
            },
          }),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const checkpoint = await log.checkpoint(req.query.size);
      return reply.type("text/plain; charset=utf-8").header("last-modified", checkpoint.signed_at.toUTCString()).send(checkpoint.note);
    },
  );

  app.get(
    "/v1/audit/log/proof",
    {
      config: { roles },
      schema: {
        tags,
        summary: "An inclusion proof",
        description:
          "The RFC 6962 inclusion proof of entry `index` in the tree of `size` entries (default: the newest checkpoint's size). 400 when index ≥ size or size is beyond the newest checkpoint.",
        querystring: Type.Object(
          { index: Count("The entry (log_index)."), size: Type.Optional(Count("The tree size.", 1)) },
          { additionalProperties: false },
        ),
        response: { 200: Proof, ...errors },
      },
    },
    async (req) => log.proof(req.query.index, req.query.size),
  );

  app.get(
    "/v1/audit/log/consistency",
    {
      config: { roles },
      schema: {
        tags,
        summary: "A consistency proof",
        description: "The RFC 6962 consistency proof between the trees of `from` and `to` entries (1 ≤ from ≤ to ≤ newest size, else 400).",
        querystring: Type.Object(
          { from: Count("The older tree size.", 1), to: Count("The newer tree size.", 1) },
          { additionalProperties: false },
        ),
        response: { 200: Consistency, ...errors },
      },
    },
    async (req) => log.consistency(req.query.from, req.query.to),
  );

  app.get(
    "/v1/audit/log/entries",
    {
      config: { roles },
      schema: {
        tags,
        summary: "Raw log entries",
        description:
          "`application/x-ndjson`: the leaves of entries start … end−1 (RFC 8785 canonical JSON of each event's ten fields, built from the event as stored now), each followed by a newline, byte for byte. 0 ≤ start < end ≤ newest size and end − start ≤ 10,000, else 400.",
        querystring: Type.Object(
          { start: Count("The first entry."), end: Count("One past the last entry.", 1) },
          { additionalProperties: false },
        ),
        produces: ["application/x-ndjson"],
        // A string in the document; the handler sends the bytes it built.
        response: { 200: Type.Unsafe<string | Buffer>(Type.String()), ...errors },
      },
    },
    // The bytes as built: no string round trip, no serializer (a Buffer is sent as is).
    async (req, reply) => reply.type("application/x-ndjson").send(await log.entries(req.query.start, req.query.end)),
  );
}
