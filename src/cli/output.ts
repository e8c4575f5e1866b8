/** How the CLI prints: aligned tables and key/value blocks for people, JSON for scripts. */

/**
 * Control characters (C0, DEL, C1), line and paragraph separators and
 * bidirectional overrides, which a terminal would act on (an escape
 * sequence in a tenant name can rewrite the screen or set the window
 * title).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** A stored string made safe to print to a terminal: unsafe characters shown as `\xNN` / `\uNNNN`. */
export const terminalSafe = (s: string): string =>
  s.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });

const cell = (v: unknown): string => {
  if (v === null || v === undefined) return "-";
  if (Array.isArray(v)) return v.length ? terminalSafe(v.join(",")) : "-";
  if (typeof v === "object") return terminalSafe(JSON.stringify(v));
  return terminalSafe(String(v));
};

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable(rows: readonly object[], columns: readonly string[]): void {
  if (rows.length === 0) {
    process.stdout.write("(none)\n");
    return;
  }
  const cells = rows.map((r) => columns.map((c) => cell((r as Record<string, unknown>)[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]?.length ?? 0)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  process.stdout.write(`${[line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join("\n")}\n`);
}

export function printRecord(record: object): void {
  const entries = Object.entries(record);
  const width = Math.max(...entries.map(([k]) => k.length));
  process.stdout.write(`${entries.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${cell(v)}`).join("\n")}\n`);
}

/** A note for people (a next cursor, a hint) that must not end up in piped output. */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}
