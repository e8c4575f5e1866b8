import type { FieldError } from "./errors.js";

/**
 * How deep any JSON request body may nest. Deeper JSON parses fine, but
 * V8's recursive JSON.stringify overflows its stack at ~4,000 levels, so a
 * value nested that deep could be stored and then never served again.
 * Audit metadata has its own, lower bound (AUDIT_METADATA_MAX_DEPTH).
 */
export const BODY_MAX_DEPTH = 64;

/** A lone (unpaired) UTF-16 surrogate: PostgreSQL cannot store it as UTF-8. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why PostgreSQL would refuse this string, or undefined when it can be stored. */
export function badString(s: string): string | undefined {
  if (s.includes("\u0000")) return "must not contain NUL (U+0000)";
  if (LONE_SURROGATE.test(s)) return "must not contain an unpaired UTF-16 surrogate";
  return undefined;
}

interface Frame {
  value: unknown;
  depth: number;
  key: string;
  parent: Frame | undefined;
}

/** The most path segments an error names; past them the field ends in "/…". */
const PATH_SEGMENTS = 8;

function pathOf(frame: Frame): string {
  const keys: string[] = [];
  for (let f: Frame | undefined = frame; f; f = f.parent) keys.push(f.key);
  keys.reverse();
  const [root, ...rest] = keys;
  // JSON Pointer escaping for keys; the root is already a path.
  const segments = rest.map((k) => k.replaceAll("~", "~0").replaceAll("/", "~1"));
  const shown = segments.length > PATH_SEGMENTS ? [...segments.slice(0, PATH_SEGMENTS), "…"] : segments;
  return [root, ...shown].join("/");
}

/**
 * The first thing in a parsed JSON value that cannot be stored and served
 * back: nesting deeper than `maxDepth` (the value itself is level 1 when it
 * is an object or array), a NUL or an unpaired surrogate in a string or a
 * key. Walks with its own stack, so no input can overflow the call stack.
 * `root` names the value in the error (`body`, `body/metadata`).
 */
export function jsonInputError(value: unknown, root: string, maxDepth: number): FieldError | undefined {
  const stack: Frame[] = [{ value, depth: 0, key: root, parent: undefined }];
  for (let frame = stack.pop(); frame; frame = stack.pop()) {
    const v = frame.value;
    if (typeof v === "string") {
      const why = badString(v);
      if (why) return { field: pathOf(frame), message: why };
      continue;
    }
    if (typeof v !== "object" || v === null) continue;
    const depth = frame.depth + 1;
    if (depth > maxDepth) {
      return { field: pathOf(frame), message: `is nested too deeply; at most ${maxDepth} levels of objects and arrays` };
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], depth, key: String(i), parent: frame });
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string;
      const child: Frame = { value: (v as Record<string, unknown>)[key], depth, key, parent: frame };
      const why = badString(key);
      if (why) return { field: pathOf(child), message: `key ${why}` };
      stack.push(child);
    }
  }
  return undefined;
}
