import type { Queryable } from "./db.js";

/**
 * What the server's own PostgreSQL role may do, for `tenant-registry migrate
 * --grant ROLE`. The role owns nothing, so it can never ALTER, DROP or
 * disable a trigger; on every table of the schema it gets SELECT, INSERT,
 * UPDATE and DELETE, less what the lists below take away. A table added by a
 * later migration is covered by the next `migrate --grant` without a change
 * here; add it below only when the server must not change or remove its rows.
 */
export const APPEND_ONLY_TABLES = [
  "audit_events",
  "audit_log_store",
  "audit_log_signer",
  "audit_log_leaves",
  "audit_log_nodes",
  "audit_log_checkpoints",
] as const;
/** Tables the server reads and never writes. */
export const READ_ONLY_TABLES = ["schema_migrations"] as const;

const ROLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

export class GrantError extends Error {
  override name = "GrantError";
}

/**
 * Grant `role` exactly what the server needs, revoking anything more it
 * holds on the schema's tables and sequences first (so re-running after an
 * upgrade also narrows). Run as the schema owner, after migrating.
 */
export async function grantServerRole(q: Queryable, role: string): Promise<string[]> {
  if (!ROLE_NAME.test(role)) throw new GrantError(`--grant ${JSON.stringify(role)}: not a role name (letters, digits, _ and $)`);
  const [info] = await q.query<{ exists: boolean; is_owner: boolean; superuser: boolean; db: string; schema: string }>(
    `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS exists,
            $1 = current_user AS is_owner,
            coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = $1), false) AS superuser,
            current_database() AS db, current_schema() AS schema`,
    [role],
  );
  if (!info?.exists) {
    throw new GrantError(`role "${role}" does not exist; create it first, e.g. CREATE ROLE ${ident(role)} LOGIN PASSWORD '…'`);
  }
  if (info.is_owner) throw new GrantError(`"${role}" is the role running the migrations (the owner); grant to the server's own role`);
  if (info.superuser) throw new GrantError(`"${role}" is a superuser: no grant can limit it; give the server an ordinary role`);
  const r = ident(role);
  const schema = ident(info.schema);
  const statements = [
    `GRANT CONNECT ON DATABASE ${ident(info.db)} TO ${r}`,
    `GRANT USAGE ON SCHEMA ${schema} TO ${r}`,
    `REVOKE ALL ON ALL TABLES IN SCHEMA ${schema} FROM ${r}`,
    `REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${schema} FROM ${r}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${r}`,
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${schema} TO ${r}`,
    ...APPEND_ONLY_TABLES.map((t) => `REVOKE UPDATE, DELETE ON ${schema}.${ident(t)} FROM ${r}`),
    ...READ_ONLY_TABLES.map((t) => `REVOKE INSERT, UPDATE, DELETE ON ${schema}.${ident(t)} FROM ${r}`),
  ];
  for (const sql of statements) await q.exec(sql);
  return statements;
}

/** One table (or sequence) and the privileges on it the server's role lacks. */
export interface MissingPrivilege {
  object: string;
  kind: "table" | "sequence";
  privileges: string[];
}

const TABLE_PRIVILEGES = ["SELECT", "INSERT", "UPDATE", "DELETE"] as const;

/** What `grantServerRole` gives on `table`: every privilege the server needs there. */
function neededOn(table: string): readonly string[] {
  if ((READ_ONLY_TABLES as readonly string[]).includes(table)) return ["SELECT"];
  if ((APPEND_ONLY_TABLES as readonly string[]).includes(table)) return ["SELECT", "INSERT"];
  return TABLE_PRIVILEGES;
}

/**
 * The privileges the connected role lacks on the schema's tables and
 * sequences, against what `grantServerRole` would give it. Empty when it can
 * serve. Read from the catalog (`has_table_privilege`), so it names each
 * missing privilege rather than failing on the first query that needs one.
 */
export async function missingServerPrivileges(q: Queryable): Promise<MissingPrivilege[]> {
  const rows = await q.query<{ name: string; kind: string; privilege: string; held: boolean }>(
    `SELECT c.relname AS name, CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END AS kind, p.privilege,
            CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, p.privilege)
                 ELSE has_table_privilege(c.oid, p.privilege) END AS held
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       CROSS JOIN LATERAL unnest(CASE WHEN c.relkind = 'S' THEN ARRAY['USAGE']
                                      ELSE ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'] END)
                  WITH ORDINALITY AS p(privilege, position)
      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'S') AND NOT c.relispartition
      ORDER BY c.relname, p.position`,
  );
  const missing = new Map<string, MissingPrivilege>();
  for (const row of rows) {
    if (row.held) continue;
    const kind = row.kind === "sequence" ? "sequence" : "table";
    if (kind === "table" && !neededOn(row.name).includes(row.privilege)) continue;
    const entry = missing.get(row.name) ?? { object: row.name, kind, privileges: [] };
    entry.privileges.push(row.privilege);
    missing.set(row.name, entry);
  }
  return [...missing.values()];
}

/** One line per table or sequence ("SELECT, INSERT on table audit_events"), at most `shown`, then how many more. */
export function describeMissing(missing: readonly MissingPrivilege[], shown = 20): string[] {
  const lines = missing.slice(0, shown).map((m) => `${m.privileges.join(", ")} on ${m.kind} ${m.object}`);
  const more = missing.length - shown;
  if (more > 0) lines.push(`… and ${more} more table(s) or sequence(s)`);
  return lines;
}
