import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type ValueError, ValueErrorType } from "@sinclair/typebox/errors";
import { Value } from "@sinclair/typebox/value";
import { findNodeAtLocation, type Node, type ParseError, parseTree, printParseErrorCode } from "jsonc-parser";
import { ConfigError } from "./config.js";
import { CatalogFile, type CatalogFileProduct } from "./schemas/catalog.js";

/** The catalog shipped with the service; CATALOG_FILE names another. */
export const DEFAULT_CATALOG_FILE = fileURLToPath(new URL("../catalog.json", import.meta.url));

/**
 * Reads and validates the catalog file. Any problem is a ConfigError (the
 * process stops with exit 2) naming the file and, for each bad entry, its
 * line, its index and key, and the field, so the operator can fix it without
 * guessing. Nothing reaches the store unless the whole file is valid.
 */
export function loadCatalogFile(file: string = DEFAULT_CATALOG_FILE): CatalogFileProduct[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message;
    throw new ConfigError(`catalog file ${file} cannot be read (${reason}); set CATALOG_FILE to the product catalog`);
  }
  return parseCatalog(text, file);
}

export function parseCatalog(text: string, file: string): CatalogFileProduct[] {
  const fail = (lines: string[]) =>
    new ConfigError(`catalog file ${file} is not valid:\n${lines.map((l) => `  ${l}`).join("\n")}\n  Fix the file and start again.`);
  const syntax: ParseError[] = [];
  const tree = parseTree(text, syntax, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  if (syntax.length > 0 || !tree) {
    // Later syntax errors are mostly echoes of the first.
    const first = syntax[0];
    throw fail([first ? `${where(text, first.offset)}: JSON syntax error: ${printParseErrorCode(first.error)}` : "the file is empty"]);
  }
  const data: unknown = JSON.parse(text);
  const entryName = (path: (string | number)[]) => {
    const [, index] = path;
    if (typeof index !== "number") return path.join(".") || "(top level)";
    const key = (data as { products: { key?: unknown }[] }).products[index]?.key;
    const label = `products[${index}]${typeof key === "string" ? ` (${JSON.stringify(key)})` : ""}`;
    return [label, ...path.slice(2)].join(".");
  };

  const seen = new Set<string>();
  const problems: string[] = [];
  for (const e of Value.Errors(CatalogFile, data)) {
    const path = e.path
      .split("/")
      .slice(1)
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const field = entryName(path);
    if (seen.has(field)) continue;
    seen.add(field);
    problems.push(`${where(text, nodeFor(tree, path).offset)}, ${field}: ${explain(e)}`);
  }
  if (problems.length > 0) throw fail(problems.slice(0, 20));

  const products = (data as CatalogFile).products;
  const firstIndex = new Map<string, number>();
  products.forEach((p, i) => {
    const first = firstIndex.get(p.key);
    if (first === undefined) firstIndex.set(p.key, i);
    else
      problems.push(
        `${where(text, nodeFor(tree, ["products", i, "key"]).offset)}, ${entryName(["products", i])}.key: duplicates products[${first}]`,
      );
  });
  if (problems.length > 0) throw fail(problems);
  return products;
}

function explain(e: ValueError): string {
  if (e.type === ValueErrorType.ObjectRequiredProperty) return "is required";
  if (e.type === ValueErrorType.ObjectAdditionalProperties) {
    return `is not a known field (known: ${Object.keys(e.schema.properties ?? {}).join(", ")})`;
  }
  const got = JSON.stringify(e.value) ?? String(e.value);
  const expected = typeof e.schema.description === "string" ? `must be ${e.schema.description}` : e.message.toLowerCase();
  return `${expected} (got ${got.length > 40 ? `${got.slice(0, 40)}…` : got})`;
}

/** The deepest node that exists on the path (a missing field points at its object). */
function nodeFor(tree: Node, path: (string | number)[]): Node {
  for (let n = path.length; n > 0; n--) {
    const node = findNodeAtLocation(tree, path.slice(0, n));
    if (node) return node;
  }
  return tree;
}

function where(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  return `line ${line}:${column}`;
}
