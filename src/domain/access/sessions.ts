import { hash, randomBytes } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { Db, Queryable } from "../../store/db.js";
import { notify } from "../../store/notify.js";
import { type SessionFacts, sessionFindLive, sessionInsert, sessionsTouch } from "../../store/sessions.js";
import type { Log } from "../log.js";
import type { CredentialLeg, Principal } from "./principal.js";

/**
 * Ending a session or disabling a person announces itself here from inside
 * its transaction (`{session_id}` or `{person_id}`); every instance drops
 * what it cached of it when the transaction commits.
 */
export const SESSION_CHANNEL = "tenant_registry_sessions";

export type SessionChange = { session_id: string } | { person_id: string };

export async function notifySessionChange(q: Queryable, change: SessionChange): Promise<void> {
  await notify(q, SESSION_CHANNEL, JSON.stringify(change));
}

/** The cookie's secret is 32 random bytes; the store keeps only its SHA-256. */
export const sessionDigest = (secret: string): string => hash("sha256", secret, "base64url");
const SECRET = /^[A-Za-z0-9_-]{43}$/;

export interface SessionOptions {
  idleMs: number;
  maxMs: number;
  /** How long cached sessions are trusted while change notifications flow. */
  cacheTtlMs: number;
  /** ... and while they may be lost (the silent-channel rule: "within about a second" still holds). */
  unlistenedTtlMs: number;
}

/**
 * Sessions on this instance: a bounded cache of live sessions by cookie
 * digest, kept honest by the change channel (and, when the channel may be
 * silent, by a one-second lifetime), and last_seen_at written coalesced:
 * at most once per session per `touchEveryMs`, in one batched statement.
 */
export class SessionService implements CredentialLeg {
  private readonly cache = new LRUCache<string, SessionFacts>({ max: 10_000 });
  private readonly pending = new Map<string, number>();
  private readonly written = new Map<string, number>();
  private listening = false;
  private generation = 0;
  private timer: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private readonly touchEveryMs: number;

  constructor(
    private readonly db: Db,
    private readonly log: Log,
    readonly opts: SessionOptions,
  ) {
    // Often enough that another instance never judges a session in use idle.
    this.touchEveryMs = Math.max(100, Math.min(30_000, Math.floor(opts.idleMs / 4)));
  }

  async start(): Promise<void> {
    this.unlisten = await this.db.listen(
      SESSION_CHANNEL,
      (payload) => this.onNotify(payload),
      (listening) => {
        this.listening = listening;
        this.generation++;
        this.cache.clear();
        if (!listening)
          this.log.warn("session cache: change notifications interrupted; cached sessions expire within a second until they resume");
      },
    );
    this.timer = setInterval(() => void this.flush(), this.touchEveryMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.unlisten?.();
    await this.flush();
  }

  /** Starts a session for a person in the caller's transaction; the secret goes into the cookie and nowhere else. */
  async begin(q: Queryable, personId: string): Promise<{ secret: string; id: string; expires_at: string }> {
    const secret = randomBytes(32).toString("base64url");
    const s = await sessionInsert(q, { personId, secretHash: sessionDigest(secret), maxMs: this.opts.maxMs });
    return { secret, ...s };
  }

  /**
   * The cookie leg of authentication (http/auth.ts): a live session from
   * memory (`peek`: undefined when the store must be asked) or from the
   * store (`lookup`), as its person's principal. Every hit counts as use
   * (the idle timer); both timeouts are checked against `now` each time.
   */
  peek(secret: string, now: number): Principal | null | undefined {
    if (!SECRET.test(secret)) return null;
    const digest = sessionDigest(secret);
    const facts = this.cache.get(digest);
    return facts === undefined ? undefined : this.use(digest, facts, now);
  }

  async lookup(secret: string, now: number): Promise<Principal | null> {
    const found = await this.find(secret, now);
    return found === null ? null : this.principal(found);
  }

  /** The live session a cookie's secret belongs to, or null; a hit counts as use. */
  async find(secret: string, now = Date.now()): Promise<SessionFacts | null> {
    if (!SECRET.test(secret)) return null;
    const digest = sessionDigest(secret);
    let facts = this.cache.get(digest);
    if (!facts) {
      const epoch = this.generation;
      const found = await sessionFindLive(this.db, digest, this.opts.idleMs);
      if (!found) return null;
      facts = found;
      if (epoch === this.generation)
        this.cache.set(digest, facts, { ttl: this.listening ? this.opts.cacheTtlMs : this.opts.unlistenedTtlMs });
    }
    return this.use(digest, facts, now) === null ? null : facts;
  }

  private use(digest: string, facts: SessionFacts, now: number): Principal | null {
    if (now >= facts.expiresAt || now - facts.lastSeenAt > this.opts.idleMs) {
      this.cache.delete(digest);
      return null;
    }
    facts.lastSeenAt = Math.max(facts.lastSeenAt, now);
    this.touch(facts.id, now);
    return this.principal(facts);
  }

  /** A person acts under their email (else the identity provider's subject). */
  private principal(facts: SessionFacts): Principal {
    const p = facts.person;
    return {
      kind: "person",
      id: p.id,
      name: p.email ?? p.subject,
      role: p.role,
      ...(p.email !== null ? { email: p.email } : {}),
      expiresAt: this.endsAt(facts),
    };
  }

  /** The idle end or the absolute end, whichever is first. */
  endsAt(facts: SessionFacts): number {
    return Math.min(facts.expiresAt, facts.lastSeenAt + this.opts.idleMs);
  }

  private onNotify(payload: string): void {
    this.generation++;
    let change: { session_id?: unknown; person_id?: unknown } = {};
    try {
      change = JSON.parse(payload) ?? {};
    } catch {}
    for (const [digest, facts] of this.cache.entries()) {
      if (facts.id === change.session_id || facts.person.id === change.person_id) this.cache.delete(digest);
    }
    if (typeof change.session_id !== "string" && typeof change.person_id !== "string") this.cache.clear();
  }

  private touch(id: string, now: number): void {
    const last = this.written.get(id);
    if (last !== undefined && now - last < this.touchEveryMs) return;
    this.written.set(id, now);
    this.pending.set(id, now);
  }

  /** Writes the uses noted since the last flush (a failure keeps them for the next). */
  async flush(): Promise<void> {
    const now = Date.now();
    for (const [id, at] of this.written) if (now - at >= this.touchEveryMs) this.written.delete(id);
    if (this.pending.size === 0) return;
    const batch = [...this.pending];
    this.pending.clear();
    try {
      await sessionsTouch(
        this.db,
        batch.map(([id, at]) => ({ id, at: new Date(at).toISOString() })),
      );
    } catch (err) {
      for (const [id, at] of batch) if (!this.pending.has(id)) this.pending.set(id, at);
      this.log.warn(
        { err: { message: (err as Error).message }, sessions: batch.length },
        "could not write session last_seen_at; will retry",
      );
    }
  }
}
