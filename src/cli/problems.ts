/**
 * A problem's `errors` as people read them: one line per field, in words,
 * instead of the schema validator's text (`body/slug must match pattern
 * "^[a-z]…"`, or four lines for one bad date: the pattern, the format, "must
 * be null" and "is not one of the allowed values" of a nullable union).
 * `--json` output and the API keep the raw entries.
 */

export interface FieldProblem {
  field: string;
  message: string;
}

const DATE_TIME = "an RFC 3339 date-time such as 2030-01-31T09:30:00Z (years 0001 to 9999)";

/** What a field holds, by its name (the last part of its path), where the raw message would be a regular expression. */
const BY_NAME: Record<string, string> = {
  slug: "3–63 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen",
  name: "1–200 characters, not only spaces",
  scopes: "1–100 printable ASCII characters, no spaces",
  scope: "1–100 printable ASCII characters, no spaces",
  expires_at: DATE_TIME,
  trial_ends_at: DATE_TIME,
  contract_start: DATE_TIME,
  contract_end: DATE_TIME,
  since: `${DATE_TIME}, or a span back from now such as 15m or 7d`,
  until: `${DATE_TIME}, or a span back from now such as 15m or 7d`,
  url: "an http:// or https:// URL",
};

/** Messages a nullable or union schema adds for every branch that did not match: noise beside the real one. */
const UNION_NOISE = new Set(["must be null", "is not one of the allowed values"]);

/** `body/scopes/0` → `scopes[0]`; `querystring/limit` → `limit`. */
function fieldName(path: string): { label: string; name: string } {
  const parts = path.split("/").filter((p) => p !== "" && !["body", "querystring", "params", "headers"].includes(p));
  let label = "";
  let name = "";
  for (const part of parts) {
    if (/^\d+$/.test(part)) label += `[${part}]`;
    else {
      label += label ? `.${part}` : part;
      name = part;
    }
  }
  return { label: label || path, name };
}

/** Raw validator messages in words; `name` is the field's name, for what it holds. First match wins. */
const RULES: [RegExp, (m: RegExpExecArray, name: string) => string | undefined][] = [
  [/^must match pattern |^must match format "date-time"/, (_, name) => BY_NAME[name]],
  [/^must be an RFC 3339 date-time/, (_, name) => BY_NAME[name] ?? DATE_TIME],
  [/^must match format "uuid"$/, () => "must be an id (a UUID)"],
  [/^must match format "uri"$/, () => BY_NAME.url],
  [/^must NOT have fewer than (\d+) characters$/, (m, name) => BY_NAME[name] ?? `at least ${m[1]} characters`],
  [/^must NOT have more than (\d+) characters$/, (m, name) => BY_NAME[name] ?? `at most ${m[1]} characters`],
  [/^must NOT have (more|fewer) than (\d+) items$/, (m) => `${m[1] === "more" ? "at most" : "at least"} ${m[2]} items`],
  [/^must be (string|integer|number|boolean|array|object)$/, (m) => `must be ${m[1] === "array" ? "a list" : `a ${m[1]}`}`],
];

/** One raw message in words; the raw text when no rule knows better. */
function reword(message: string, name: string): string {
  for (const [pattern, say] of RULES) {
    const m = pattern.exec(message);
    if (m) return say(m, name) ?? message;
  }
  return message;
}

/** One line per field: `slug: 3–63 lowercase letters, …`. */
export function humanFieldProblems(errors: readonly FieldProblem[]): string[] {
  const byField = new Map<string, { label: string; messages: string[]; noise: string[] }>();
  for (const e of errors) {
    const { label, name } = fieldName(e.field);
    const entry = byField.get(label) ?? { label, messages: [], noise: [] };
    byField.set(label, entry);
    if (UNION_NOISE.has(e.message)) {
      entry.noise.push(e.message);
      continue;
    }
    const text = reword(e.message, name);
    if (!entry.messages.includes(text)) entry.messages.push(text);
  }
  return [...byField.values()].map(
    ({ label, messages, noise }) => `${label}: ${(messages.length > 0 ? messages : noise.slice(0, 1)).join("; ")}`,
  );
}
