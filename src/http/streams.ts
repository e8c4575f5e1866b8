import { Type } from "@sinclair/typebox";
import { AppError } from "../domain/errors.js";
import { AuditListQuery } from "../schemas/audit.js";
import { ProblemRef } from "../schemas/common.js";
import type { AuditTail, StreamFilter } from "./audit-tail.js";
import { CursorPart, decodeCursor } from "./pagination.js";
import { fanOut, SseStream, type StreamSlots } from "./sse.js";
import type { App } from "./types.js";

/** What the streams need from the rest of the app. */
export interface StreamHub {
  /** The one reader of the audit log on this instance. */
  tail: AuditTail;
  /** Verify-cache changes, fanned out from the notification channel. */
  changes: ChangeFeed;
  /** Stream slots per principal and per instance, both kinds together. */
  slots: StreamSlots;
  /** Open streams by kind (metrics), and ending them all at shutdown. */
  streams: Map<"audit" | "changes", Set<SseStream>>;
  commentEveryMs: number;
  /** A subscriber was cut for not reading. */
  dropped(kind: "audit" | "changes"): void;
}

/**
 * `/v1/internal/changes`: each notice or liveness change is serialised once
 * and written to every subscriber, a slice at a time, in the order they
 * came; one heartbeat timer serves them all.
 */
export class ChangeFeed {
  private readonly subs = new Set<SseStream>();
  private queue: Promise<void> = Promise.resolve();
  private live = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly heartbeatEveryMs: number) {}

  /** A notice from the change channel. */
  notice(payload: string): void {
    this.send(`event: invalidate\ndata: ${normalise(payload)}\n\n`);
  }

  /** The channel started or stopped carrying notices: subscribers drop everything they cached. */
  listening(live: boolean): void {
    this.live = live;
    this.send('event: invalidate\ndata: {"all":true}\n\n');
  }

  add(stream: SseStream): void {
    this.subs.add(stream);
    if (this.live) stream.write(HEARTBEAT);
    if (!this.timer) {
      this.timer = setInterval(() => {
        if (this.live) this.queue = this.queue.then(() => fanOut(this.subs, HEARTBEAT));
      }, this.heartbeatEveryMs);
      this.timer.unref();
    }
    stream.onClose(() => {
      this.subs.delete(stream);
      if (this.subs.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    });
  }

  private send(text: string): void {
    if (this.subs.size === 0) return;
    const message = Buffer.from(text);
    this.queue = this.queue.then(() => fanOut(this.subs, message));
  }
}

const HEARTBEAT = Buffer.from("event: heartbeat\ndata: {}\n\n");

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
const MAX_ID = 2n ** 63n - 1n;

/** Answers every stream route can give besides its event stream. */
const STREAM_REFUSALS = {
  429: {
    ...ProblemRef,
    description:
      "This principal holds STREAM_MAX_PER_PRINCIPAL streams on this instance, or too many failed authentications came from this address; retry after Retry-After seconds.",
  },
  503: {
    ...ProblemRef,
    description: "This instance holds STREAM_MAX streams, or the database is unavailable; retry after Retry-After seconds.",
  },
};

const eventStream = (description: string) => ({
  description,
  content: { "text/event-stream": { schema: Type.String({ description }) } },
});

/** The last id received, as a bigint, or the 400 for a value no audit event can have. */
function lastEventId(header: string): bigint {
  const v = header.trim();
  if (!LastEventId.test(v) || BigInt(v) > MAX_ID) {
    throw new AppError("invalid_input", "Last-Event-ID must be an audit event id", {
      errors: [{ field: "headers/last-event-id", message: "must be a decimal integer from 0 to 9223372036854775807" }],
    });
  }
  return BigInt(v);
}

const badCursor = () =>
  new AppError("invalid_input", "cursor is not valid; pass a next_cursor from this list unchanged", {
    errors: [{ field: "querystring/cursor", message: "is not a cursor this registry issued" }],
  });

function track(hub: StreamHub, kind: "audit" | "changes", s: SseStream): void {
  let set = hub.streams.get(kind);
  if (!set) {
    set = new Set();
    hub.streams.set(kind, set);
  }
  set.add(s);
  s.onClose(() => set.delete(s));
}

export async function streamRoutes(app: App, { hub }: { hub: StreamHub }): Promise<void> {
  app.get(
    "/v1/audit/stream",
    {
      config: { roles: ["admin", "auditor"] },
      schema: {
        tags: ["audit"],
        summary: "Follow the audit trail (server-sent events)",
        description:
          "`text/event-stream`: each committed event is one message (`id: <audit id>`, `event: audit`, `data: <event JSON>`), in id order, with the filters of GET /v1/audit. " +
          "Resume with `Last-Event-ID` (or `?cursor=` from a list page): every later event arrives exactly once, a late-committing one included; " +
          "an id not issued yet is accepted and the stream waits for it. " +
          "Without either, the stream starts at the settled head of the log. A comment line at least every 15 s keeps proxies from closing it. " +
          "A principal may hold STREAM_MAX_PER_PRINCIPAL streams on an instance (429 beyond) and an instance STREAM_MAX (503 beyond), " +
          "counted with GET /v1/internal/changes. A subscriber that leaves more than 1 MiB unread is disconnected.",
        querystring: AuditStreamQuery,
        headers: Type.Object({
          "last-event-id": Type.Optional(
            Type.String({ description: "The id of the last event received (0 to 9223372036854775807): resume after it." }),
          ),
        }),
        response: {
          200: eventStream("An event stream (text/event-stream): `event: audit` messages and comment lines."),
          400: {
            ...ProblemRef,
            description: "A bad filter, a Last-Event-ID outside 0 to 9223372036854775807, or a cursor this registry did not issue.",
          },
          401: ProblemRef,
          403: ProblemRef,
          ...STREAM_REFUSALS,
        },
      },
    },
    async (req, reply) => {
      const { cursor, ...query } = req.query;
      const header = req.headers["last-event-id"];
      let after: bigint | null = null;
      let fromCursor = false;
      if (typeof header === "string" && header.trim() !== "") after = lastEventId(header);
      else if (cursor) {
        after = BigInt(decodeCursor("audit", cursor, [CursorPart.bigintId])[0] as string);
        fromCursor = true;
      }
      const filter: StreamFilter = { ...query, ...(query.tenant_id ? { tenant_id: query.tenant_id.toLowerCase() } : {}) };

      const release = hub.slots.take(req.actor.principal);
      const unhold = hub.tail.hold();
      let opened = false;
      try {
        // One read shared by everyone connecting meanwhile: the tail now stands at the head as of this request.
        const head = await hub.tail.sync();
        // A list page hands out only ids below the head, so a cursor past it was never issued here.
        if (fromCursor && after !== null && after > head) throw badCursor();
        const stream = new SseStream(req, reply, () => hub.dropped("audit"));
        stream.open();
        opened = true;
        track(hub, "audit", stream);
        const comment = setInterval(() => stream.write(": keep-alive\n\n"), hub.commentEveryMs);
        stream.onClose(() => {
          clearInterval(comment);
          unhold();
          release();
        });
        hub.tail.subscribe(stream, filter, after);
      } finally {
        if (!opened) {
          unhold();
          release();
        }
      }
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
          "A subscriber whose heartbeats stop must stop trusting what it cached. Takes no query parameters. " +
          "Counted with GET /v1/audit/stream against STREAM_MAX_PER_PRINCIPAL (429 beyond) and STREAM_MAX (503 beyond).",
        querystring: Type.Object({}, { additionalProperties: false }),
        response: {
          200: eventStream("An event stream (text/event-stream): `event: invalidate` and `event: heartbeat` messages."),
          400: { ...ProblemRef, description: "A query parameter was given; this stream takes none." },
          401: ProblemRef,
          403: ProblemRef,
          ...STREAM_REFUSALS,
        },
      },
    },
    async (req, reply) => {
      const release = hub.slots.take(req.actor.principal);
      const stream = new SseStream(req, reply, () => hub.dropped("changes"));
      stream.onClose(release);
      stream.open();
      track(hub, "changes", stream);
      hub.changes.add(stream);
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
