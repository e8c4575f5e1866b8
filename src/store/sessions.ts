import type { Person, Session } from "../schemas/person.js";
import type { Queryable } from "./db.js";
import { iso } from "./rows.js";

/**
 * A session is live while it has not been ended, its absolute end
 * (`expires_at`) is ahead, and it was used within the idle timeout
 * (`idleMs`, a setting, passed in by the caller).
 */
const LIVE = "s.ended_at IS NULL AND s.expires_at > now() AND s.last_seen_at > now() - make_interval(secs => $IDLE::float8 / 1000)";
const live = (idleParam: number) => LIVE.replace("$IDLE", `$${idleParam}`);

interface SessionRow {
  [k: string]: unknown;
  id: string;
  person_id: string;
  email: string | null;
  started_at: Date;
  last_seen_at: Date;
  ends_at: Date;
}

const SESSION_COLUMNS = (idleParam: number) =>
  `s.id, s.person_id, p.email, s.started_at, s.last_seen_at,
   least(s.expires_at, s.last_seen_at + make_interval(secs => $${idleParam}::float8 / 1000)) AS ends_at`;

const toSession = (r: SessionRow): Session => ({
  id: r.id,
  person: { id: r.person_id, email: r.email },
  started_at: iso(r.started_at),
  last_seen_at: iso(r.last_seen_at),
  expires_at: iso(r.ends_at),
});

export async function sessionInsert(
  q: Queryable,
  s: { personId: string; secretHash: string; maxMs: number },
): Promise<{ id: string; expires_at: string }> {
  const [row] = await q.query<{ id: string; expires_at: Date }>(
    `INSERT INTO sessions (person_id, secret_hash, expires_at)
     VALUES ($1, $2, date_trunc('milliseconds', now()) + make_interval(secs => $3::float8 / 1000))
     RETURNING id, expires_at`,
    [s.personId, s.secretHash, s.maxMs],
  );
  if (!row) throw new Error("session insert returned no row");
  return { id: row.id, expires_at: iso(row.expires_at) };
}

/** What a cookie's digest authenticates as: a live session of a person who is not disabled. */
export interface SessionFacts {
  id: string;
  person: { id: string; email: string | null; name: string | null; role: Person["role"]; subject: string };
  /** Epoch milliseconds. */
  lastSeenAt: number;
  /** The absolute end, epoch milliseconds. */
  expiresAt: number;
}

export async function sessionFindLive(q: Queryable, secretHash: string, idleMs: number): Promise<SessionFacts | null> {
  const [r] = await q.query<{
    id: string;
    person_id: string;
    email: string | null;
    name: string | null;
    role: Person["role"];
    subject: string;
    last_seen_at: Date;
    expires_at: Date;
  }>(
    `SELECT s.id, s.person_id, p.email, p.name, p.role, p.subject, s.last_seen_at, s.expires_at
       FROM sessions s JOIN people p ON p.id = s.person_id
      WHERE s.secret_hash = $1 AND p.disabled_at IS NULL AND ${live(2)}`,
    [secretHash, idleMs],
  );
  if (!r) return null;
  return {
    id: r.id,
    person: { id: r.person_id, email: r.email, name: r.name, role: r.role, subject: r.subject },
    lastSeenAt: r.last_seen_at.getTime(),
    expiresAt: r.expires_at.getTime(),
  };
}

/** Live sessions, newest first (bounded: a registry has people, not crowds). */
export async function sessionListLive(q: Queryable, idleMs: number): Promise<Session[]> {
  const rows = await q.query<SessionRow>(
    `SELECT ${SESSION_COLUMNS(1)} FROM sessions s JOIN people p ON p.id = s.person_id
      WHERE p.disabled_at IS NULL AND ${live(1)}
      ORDER BY s.started_at DESC, s.id LIMIT 10000`,
    [idleMs],
  );
  return rows.map(toSession);
}

/** Whether a session of that id was ever started (for 204 versus 404). */
export async function sessionExists(q: Queryable, id: string): Promise<boolean> {
  return (await q.query("SELECT 1 FROM sessions WHERE id = $1", [id])).length > 0;
}

/** Ends the session if it is live; returns its person when it did. */
export async function sessionEnd(q: Queryable, id: string, idleMs: number): Promise<{ person_id: string; email: string | null } | null> {
  const [r] = await q.query<{ person_id: string; email: string | null }>(
    `UPDATE sessions s SET ended_at = now() FROM people p
      WHERE s.id = $1 AND p.id = s.person_id AND ${live(2)}
      RETURNING s.person_id, p.email`,
    [id, idleMs],
  );
  return r ?? null;
}

/** Ends every session of a person that has not ended; returns their ids. */
export async function sessionsEndForPerson(q: Queryable, personId: string): Promise<string[]> {
  const rows = await q.query<{ id: string }>(
    "UPDATE sessions SET ended_at = now() WHERE person_id = $1 AND ended_at IS NULL RETURNING id",
    [personId],
  );
  return rows.map((r) => r.id);
}

/** Coalesced use: each session's last_seen_at (never backwards), and its person's. */
export async function sessionsTouch(q: Queryable, uses: readonly { id: string; at: string }[]): Promise<void> {
  if (uses.length === 0) return;
  await q.query(
    `WITH u AS (SELECT * FROM unnest($1::uuid[], $2::timestamptz[]) AS x(id, at)),
          s AS (UPDATE sessions AS s SET last_seen_at = u.at FROM u
                 WHERE s.id = u.id AND s.ended_at IS NULL AND s.last_seen_at < u.at
                 RETURNING s.person_id, u.at)
     UPDATE people AS p SET last_seen_at = m.at
       FROM (SELECT person_id, max(at) AS at FROM s GROUP BY person_id) AS m
      WHERE p.id = m.person_id AND (p.last_seen_at IS NULL OR p.last_seen_at < m.at)`,
    [uses.map((u) => u.id), uses.map((u) => u.at)],
  );
}

export async function loginStateInsert(
  q: Queryable,
  s: { stateHash: string; nonce: string; codeVerifier: string; returnTo: string; ttlMs: number },
): Promise<void> {
  // Sign-ins never finished are pruned as new ones start (the index keeps this cheap).
  await q.query("DELETE FROM login_states WHERE expires_at < now()");
  await q.query(
    `INSERT INTO login_states (state_hash, nonce, code_verifier, return_to, expires_at)
     VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::float8 / 1000))`,
    [s.stateHash, s.nonce, s.codeVerifier, s.returnTo, s.ttlMs],
  );
}

/** Takes a sign-in's state once: a second take, an unknown or an expired state gives null. */
export async function loginStateTake(
  q: Queryable,
  stateHash: string,
): Promise<{ nonce: string; code_verifier: string; return_to: string } | null> {
  const [r] = await q.query<{ nonce: string; code_verifier: string; return_to: string; live: boolean }>(
    "DELETE FROM login_states WHERE state_hash = $1 RETURNING nonce, code_verifier, return_to, expires_at > now() AS live",
    [stateHash],
  );
  return r?.live ? { nonce: r.nonce, code_verifier: r.code_verifier, return_to: r.return_to } : null;
}
