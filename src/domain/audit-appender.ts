import type { AuditEvent } from "../schemas/audit.js";
import { type AuditInput, auditInsert } from "../store/audit.js";
import type { Queryable } from "../store/db.js";
import { AppError } from "./errors.js";

interface Pending {
  input: AuditInput;
  resolve: (event: AuditEvent) => void;
  reject: (err: unknown) => void;
}

/** Failures where the database refused the statement, so nothing of it was stored. */
const REFUSED = new Set(["invalid_input", "not_found", "conflict"]);

/**
 * Group commit for single appends (POST /v1/audit). Events that arrive
 * while earlier inserts are in flight wait and then share one INSERT: one
 * statement and one commit for many requests, which is what lets single
 * appends keep up with the database under load. With no load, an event is
 * inserted at once, alone.
 *
 * Each request still gets its own outcome, and a 201 only after its event
 * has committed. A shared INSERT is atomic; when the database refuses it
 * (one unknown tenant, say), each half is retried on its own, down to
 * single events, so only the bad one fails (a few statements, not one per
 * event). When the outcome is unknown (connection lost, timeout), nothing
 * is retried: a retry could store an event twice.
 */
export class AuditAppender {
  private readonly queue: Pending[] = [];
  private inFlight = 0;

  constructor(
    private readonly q: Queryable,
    /** Inserts at once; the rest of the pool stays free for other requests. */
    private readonly maxInFlight = 4,
    private readonly maxBatch = 500,
  ) {}

  append(input: AuditInput): Promise<AuditEvent> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      void this.flush(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async flush(batch: Pending[]): Promise<void> {
    try {
      // auditInsert returns events in id order, which is the order given.
      const events = await auditInsert(
        this.q,
        batch.map((p) => p.input),
      );
      batch.forEach((p, i) => {
        const event = events[i];
        if (event) p.resolve(event);
        else p.reject(new Error("audit insert returned fewer rows than events"));
      });
    } catch (err) {
      if (batch.length === 1 || !(err instanceof AppError && REFUSED.has(err.code))) {
        for (const p of batch) p.reject(err);
        return;
      }
      const half = Math.ceil(batch.length / 2);
      await Promise.all([this.flush(batch.slice(0, half)), this.flush(batch.slice(half))]);
    }
  }
}
