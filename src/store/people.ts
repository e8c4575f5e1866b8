import type { Person } from "../schemas/person.js";
import type { Queryable } from "./db.js";
import { isoOrNull } from "./rows.js";

interface PersonRow {
  [k: string]: unknown;
  id: string;
  email: string | null;
  name: string | null;
  role: Person["role"];
  last_seen_at: Date | null;
  disabled_at: Date | null;
}

const COLUMNS = "id, email, name, role, last_seen_at, disabled_at";

const toPerson = (r: PersonRow): Person => ({
  id: r.id,
  email: r.email,
  name: r.name,
  role: r.role,
  last_seen_at: isoOrNull(r.last_seen_at),
  disabled: r.disabled_at !== null,
});

export interface PersonSignIn {
  issuer: string;
  subject: string;
  email: string | null;
  name: string | null;
  role: Person["role"];
}

/**
 * At sign-in: the person by issuer and subject, created or refreshed
 * (email, name and role as the claims say now) unless disabled; a disabled
 * person comes back unchanged. Locks the row for the rest of the transaction.
 */
export async function personUpsert(q: Queryable, p: PersonSignIn): Promise<Person> {
  const rows = await q.query<PersonRow>(
    `INSERT INTO people (issuer, subject, email, name, role, last_seen_at)
     VALUES ($1, $2, $3, $4, $5, date_trunc('milliseconds', now()))
     ON CONFLICT (issuer, subject) DO UPDATE
       SET email = EXCLUDED.email, name = EXCLUDED.name, role = EXCLUDED.role, last_seen_at = EXCLUDED.last_seen_at
       WHERE people.disabled_at IS NULL
     RETURNING ${COLUMNS}`,
    [p.issuer, p.subject, p.email, p.name, p.role],
  );
  if (rows[0]) return toPerson(rows[0]);
  const [row] = await q.query<PersonRow>(`SELECT ${COLUMNS} FROM people WHERE issuer = $1 AND subject = $2 FOR UPDATE`, [
    p.issuer,
    p.subject,
  ]);
  if (!row) throw new Error("person vanished during sign-in");
  return toPerson(row);
}

export async function personFindByIdForUpdate(q: Queryable, id: string): Promise<Person | null> {
  const rows = await q.query<PersonRow>(`SELECT ${COLUMNS} FROM people WHERE id = $1 FOR UPDATE`, [id]);
  return rows[0] ? toPerson(rows[0]) : null;
}

export async function personSetDisabled(q: Queryable, id: string, disabled: boolean): Promise<Person> {
  const rows = await q.query<PersonRow>(
    `UPDATE people SET disabled_at = CASE WHEN $2 THEN date_trunc('milliseconds', now()) END WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, disabled],
  );
  if (!rows[0]) throw new Error("person vanished");
  return toPerson(rows[0]);
}

/** Everyone who has signed in, most recently seen first. */
export async function personList(q: Queryable): Promise<Person[]> {
  const rows = await q.query<PersonRow>(`SELECT ${COLUMNS} FROM people ORDER BY last_seen_at DESC NULLS LAST, id LIMIT 10000`);
  return rows.map(toPerson);
}
