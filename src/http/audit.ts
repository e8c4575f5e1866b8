import { Type } from "@sinclair/typebox";
import { appendEvents, postedEvent } from "../domain/audit.js";
import { AuditAppender } from "../domain/audit-appender.js";
import { AppError } from "../domain/errors.js";
import { AuditBatch, AuditBatchCreate, AuditEvent, AuditEventCreate, AuditList, AuditListQuery } from "../schemas/audit.js";
import { ProblemRef } from "../schemas/common.js";
import { auditList } from "../store/audit.js";
import { CursorPart, decodeCursor, page } from "./pagination.js";
import type { App, Deps } from "./types.js";

/** POST /v1/audit/batch alone may carry up to 1,000 events of up to 16 KiB metadata each. */
export const AUDIT_BATCH_BODY_LIMIT = 16 * 1024 * 1024;

const AuditEventRef = Type.Ref(AuditEvent);
const errors = { 400: ProblemRef, 401: ProblemRef, 403: ProblemRef, 404: ProblemRef, 413: ProblemRef };
const tags = ["audit"];
export async function auditRoutes(app: App, { db }: Deps): Promise<void> {
  const appender = new AuditAppender(db);

  app.post(
    "/v1/audit",
    {
      config: { roles: ["admin", "service"] },
      schema: {
        tags,
        summary: "Append an audit event",
        description: "Stores one event and returns it. 404 when `tenant_id` or `product` does not exist.",
        body: AuditEventCreate,
        response: { 201: AuditEventRef, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send(await appender.append(postedEvent(req.body, req.actor))),
  );

  app.post(
    "/v1/audit/batch",
    {
      config: { roles: ["admin", "service"] },
      bodyLimit: AUDIT_BATCH_BODY_LIMIT,
      schema: {
        tags,
        summary: "Append up to 1,000 audit events",
        description:
          "All events are stored, in the order given (ascending ids), or none is. A 404 names each event whose `tenant_id` or `product` does not exist. Body limit 16 MiB.",
        body: AuditBatchCreate,
        response: { 201: AuditBatch, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send({ events: await db.tx((q) => appendEvents(q, req.body.events, req.actor)) }),
  );

  app.get(
    "/v1/audit",
    {
      config: { roles: ["admin", "auditor"] },
      schema: {
        tags,
        summary: "Read the audit trail",
        description:
          "Ascending by id, filtered, paged with `cursor`. Never skips: following `next_cursor` while events are being appended returns every committed event exactly once. `next_cursor` is null when there are no more events now; to tail the log, poll again with the last non-null cursor and skip ids already seen.",
        querystring: AuditListQuery,
        response: { 200: AuditList, ...errors },
      },
    },
    async (req) => {
      const { limit, cursor, ...filters } = req.query;
      if (filters.since && filters.until && Date.parse(filters.since) >= Date.parse(filters.until)) {
        throw new AppError("invalid_input", "until must be later than since", {
          errors: [{ field: "querystring/until", message: "must be later than since" }],
        });
      }
      const rows = await auditList(db, {
        ...filters,
        limit: limit + 1,
        ...(cursor ? { after: decodeCursor("audit", cursor, [CursorPart.bigintId])[0] } : {}),
      });
      const { items, next_cursor } = page(rows, limit, "audit", (e) => [e.id]);
      return { events: items, next_cursor };
    },
  );
}
