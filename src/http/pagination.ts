import { createHash } from "node:crypto";
import { AppError } from "../domain/errors.js";

/**
 * Opaque list cursors: the keyset values of the last row handed out, bound
 * to the list they came from and checksummed, so an edited or foreign
 * cursor is a 400 rather than a silently different page. A cursor only
 * positions a list; it grants nothing the query does not.
 */
type CursorValue = string | number;

const sum = (body: string) => createHash("sha256").update(`tenant-registry-cursor:${body}`).digest("base64url").slice(0, 11);

export function encodeCursor(list: string, values: readonly CursorValue[]): string {
  const body = Buffer.from(JSON.stringify([list, ...values])).toString("base64url");
  return `${body}.${sum(body)}`;
}

/** What a cursor value must look like, per position; a forged value that passes the checksum still has to. */
export const CursorPart = {
  timestamp: (v: CursorValue) =>
    typeof v === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v) && !Number.isNaN(Date.parse(v)),
  uuid: (v: CursorValue) => typeof v === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v),
  bigintId: (v: CursorValue) => typeof v === "string" && /^\d{1,19}$/.test(v) && BigInt(v) <= 2n ** 63n - 1n,
};

export function decodeCursor(list: string, cursor: string, parts: readonly ((v: CursorValue) => boolean)[]): string[] {
  const bad = () =>
    new AppError("invalid_input", "cursor is not valid; pass a next_cursor from this list unchanged", {
      errors: [{ field: "querystring/cursor", message: "is not a valid cursor for this list" }],
    });
  const [body, check, ...rest] = cursor.split(".");
  if (!body || !check || rest.length > 0 || sum(body) !== check) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed[0] !== list || parsed.length !== parts.length + 1) throw bad();
  const values = parsed.slice(1) as CursorValue[];
  if (!values.every((v, i) => (typeof v === "string" || typeof v === "number") && parts[i]?.(v))) throw bad();
  return values.map(String);
}

/**
 * Given rows fetched with `limit + 1`, the page to return and the cursor for
 * the next one (null when this is the last page).
 */
export function page<T>(
  rows: T[],
  limit: number,
  list: string,
  key: (row: T) => CursorValue[],
): { items: T[]; next_cursor: string | null } {
  if (rows.length <= limit) return { items: rows, next_cursor: null };
  const items = rows.slice(0, limit);
  return { items, next_cursor: encodeCursor(list, key(items[items.length - 1] as T)) };
}
