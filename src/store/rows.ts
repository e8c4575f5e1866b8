/** Row-to-resource helpers shared by the SQL modules. */

/**
 * A resource as the drivers return its row: the schema's type, with the
 * named RFC 3339 fields as Date (nullable ones as Date | null). Row types
 * are derived from the resource schemas with this, never written apart.
 */
export type RowOf<T, K extends keyof T> = Omit<T, K> & { [P in K]: null extends T[P] ? Date | null : Date } & {
  [k: string]: unknown;
};
export const iso = (d: Date): string => d.toISOString();
export const isoOrNull = (d: Date | null): string | null => (d === null ? null : d.toISOString());
