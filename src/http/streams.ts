import { once } from "node:events";
import { Type } from "@sinclair/typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../domain/errors.js";
import { AuditListQuery } from "../schemas/audit.js";
import { ProblemRef } from "../schemas/common.js";
import { type AuditFilter, auditList } from "../store/audit.js";
import type { Db } from "../store/db.js";
import { CursorPart, decodeCursor } from "./pagination.js";
import type { App } from "./types.js";

const PAGE = 500;

/** What the streams need from the rest of the app: wake-ups and the subscriber register. */
export interface StreamHub {
  /** Called whenever audit events may have committed. Returns an unsubscribe. */
  onAudit(fn: () => void): () => void;
  /** Verify-cache changes: a notice payload, or a liveness change of the change channel. */
  onChange(fn: (change: { payload: string } | { listening: boolean }) => void): () => void;
  /** True while change notifications flow. */
  changesLive(): boolean;
  /** Open streams by kind (metrics), and ending them all at shutdown. */
  streams: Map<"audit" | "changes", Set<SseStream>>;
  auditPollMs: number;
  commentEveryMs: number;
  heartbeatEveryMs: number;
}

/**
 * One server-sent-events response. The socket's idle timeout is turned off
 * (a stream is quiet between events by design, and request timeouts meant
 * for ordinary requests must not cut it); writes respect backpressure.
 */
export class SseStream {
  closed = false;
  private readonly closers: (() => void)[] = [];

  constructor(
    private readonly req: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {}

  open(): void {
    this.reply.hijack();
    const raw = this.reply.raw;
    this.req.raw.socket.setTimeout(0);
    this.req.raw.socket.setNoDelay(true);
    raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
      "x-content-type-options": "nosniff",
      "x-request-id": this.req.id,
    });
    // Headers now, not with the first event: the caller learns at once that it is subscribed.
    raw.write(": subscribed\n\n");
    this.req.raw.on("close", () => this.close());
    raw.on("error", () => this.close());
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closers.push(fn);
  }

  /** Write one message; resolves once the socket can take more. */
  async send(text: string): Promise<void> {
    if (this.closed) return;
    if (!this.reply.raw.write(text)) {
      await Promise.race([once(this.reply.raw, "drain"), new Promise<void>((r) => this.onClose(r))]);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fn of this.closers.splice(0)) fn();
    if (!this.reply.raw.writableEnded) this.reply.raw.end();
  }
}

const AuditStreamQuery = Type.Object(
  {
    tenant_id: AuditListQuery.properties.tenant_id,
    product: AuditListQuery.properties.product,
    actor_id: AuditListQuery.properties.actor_id,
    action: AuditListQuery.properties.action,
    cursor: AuditListQuery.properties.cursor,
  },
  { additionalProperties: false },
);

const LastEventId = /^\d{1,19}$/;

async function settledHead(db: Db): Promise<string> {
  const [r] = await db.query<{ head: string }>("SELECT (audit_horizon() - 1)::text AS head");
  if (!r) throw new Error("audit_horizon() returned no row");
  return r.head;
}

function track(hub: StreamHub, kind: "audit" | "changes", s: SseStream): void {
  let set = hub.streams.get(kind);
  if (!set) {
    set = new Set();
    hub.streams.set(kind, set);
  }
  set.add(s);
  s.onClose(() => set.delete(s));
}

export async function streamRoutes(app: App, { db, hub }: { db: Db; hub: StreamHub }): Promise<void> {
  app.get(
    "/v1/audit/stream",
    {
      config: { roles: ["admin", "auditor"] },
      schema: {
        tags: ["audit"],
        summary: "Follow the audit trail (server-sent events)",
        description:
          "`text/event-stream`: each committed event is one message (`id: <audit id>`, `event: audit`, `data: <event JSON>`), in id order, with the filters of GET /v1/audit. " +
          "Resume with `Last-Event-ID` (or `?cursor=` from a list page): every later event arrives exactly once, a late-committing one included. " +
          "Without either, the stream starts at the settled head of the log. A comment line at least every 15 s keeps proxies from closing it.",
        querystring: AuditStreamQuery,
        headers: Type.Object({
          "last-event-id": Type.Optional(Type.String({ description: "The id of the last event received: resume after it." })),
        }),
        response: {
          200: Type.String({ description: "An event stream (text/event-stream)." }),
          400: ProblemRef,
          401: ProblemRef,
          403: ProblemRef,
        },
      },
    },
    async (req, reply) => {
      const { cursor, ...filters } = req.query;
      const lastEventId = req.headers["last-event-id"];
      let after: string;
      if (typeof lastEventId === "string" && lastEventId.trim() !== "") {
        if (!LastEventId.test(lastEventId.trim())) {
          throw new AppError("invalid_input", "Last-Event-ID must be an audit event id", {
            errors: [{ field: "headers/last-event-id", message: "must be an audit event id (decimal digits)" }],
          });
        }
        after = lastEventId.trim();
      } else if (cursor) {
        after = decodeCursor("audit", cursor, [CursorPart.bigintId])[0] as string;
      } else {
        after = await settledHead(db);
      }

      const stream = new SseStream(req, reply);
      stream.open();
      track(hub, "audit", stream);
      const filter: Omit<AuditFilter, "limit"> = filters;
      let running = false;
      let again = false;
      const pump = async () => {
        if (running) {
          again = true;
          return;
        }
        running = true;
        try {
          do {
            again = false;
            for (;;) {
              const rows = await auditList(db, { ...filter, after, limit: PAGE });
              for (const e of rows) {
                if (stream.closed) return;
                await stream.send(`id: ${e.id}\nevent: audit\ndata: ${JSON.stringify(e)}\n\n`);
                after = e.id;
              }
              if (rows.length < PAGE || stream.closed) break;
            }
          } while (again && !stream.closed);
        } catch (err) {
          // The caller reconnects with Last-Event-ID and misses nothing.
          req.log.warn({ err: { message: (err as Error).message } }, "audit stream: read failed; closing the stream");
          stream.close();
        } finally {
          running = false;
        }
      };
      const unsubscribe = hub.onAudit(() => void pump());
      const poll = setInterval(() => void pump(), hub.auditPollMs);
      const comment = setInterval(() => void stream.send(": keep-alive\n\n"), hub.commentEveryMs);
      stream.onClose(() => {
        unsubscribe();
        clearInterval(poll);
        clearInterval(comment);
      });
      void pump();
    },
  );

  app.get(
    "/v1/internal/changes",
    {
      config: { roles: ["admin", "service"] },
      logLevel: "warn",
      schema: {
        tags: ["api-keys"],
        summary: "Verify-cache invalidations (server-sent events)",
        description:
          '`text/event-stream` for caches of verify answers: `event: invalidate` with `data: {"key_id": …}` or `{"tenant_id": …}` when something that can flip an answer changed ' +
          '(`{"all": true}`: drop everything, the registry may have missed changes), and `event: heartbeat` with `data: {}` at least every second while notices flow. ' +
          "A subscriber whose heartbeats stop must stop trusting what it cached.",
        response: {
          200: Type.String({ description: "An event stream (text/event-stream)." }),
          401: ProblemRef,
          403: ProblemRef,
        },
      },
    },
    async (req, reply) => {
      const stream = new SseStream(req, reply);
      stream.open();
      track(hub, "changes", stream);
      const heartbeat = () => {
        if (hub.changesLive()) void stream.send("event: heartbeat\ndata: {}\n\n");
      };
      heartbeat();
      const timer = setInterval(heartbeat, hub.heartbeatEveryMs);
      const unsubscribe = hub.onChange((change) => {
        if ("payload" in change) void stream.send(`event: invalidate\ndata: ${normalise(change.payload)}\n\n`);
        else void stream.send('event: invalidate\ndata: {"all":true}\n\n');
      });
      stream.onClose(() => {
        clearInterval(timer);
        unsubscribe();
      });
    },
  );
}

/** A notice as one line of JSON: `{key_id}` or `{tenant_id}`; anything unreadable becomes "drop everything". */
function normalise(payload: string): string {
  try {
    const v: unknown = JSON.parse(payload);
    if (typeof v === "object" && v !== null && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      if (typeof o.key_id === "string") return JSON.stringify({ key_id: o.key_id });
      if (typeof o.tenant_id === "string") return JSON.stringify({ tenant_id: o.tenant_id });
    }
  } catch {
    // fall through
  }
  return '{"all":true}';
}
