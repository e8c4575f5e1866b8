import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_CATALOG_FILE, loadCatalogFile, parseCatalog } from "../src/catalog-file.js";
import { ConfigError } from "../src/config.js";

const errorOf = (text: string): string => {
  try {
    parseCatalog(text, "products.json");
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected the catalog to be refused");
};

describe("catalog file", () => {
  const dir = mkdtempSync(join(tmpdir(), "tr-catalog-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("the shipped catalog is valid, with products with and without a trial", () => {
    const products = loadCatalogFile(DEFAULT_CATALOG_FILE);
    expect(products.length).toBeGreaterThanOrEqual(3);
    expect(products.some((p) => typeof p.trial_days === "number")).toBe(true);
    expect(products.some((p) => p.trial_days == null)).toBe(true);
  });

  it("reads another file and keeps optional fields optional", () => {
    const file = join(dir, "ok.json");
    writeFileSync(file, JSON.stringify({ products: [{ key: "docs", name: "Docs" }] }));
    expect(loadCatalogFile(file)).toEqual([{ key: "docs", name: "Docs" }]);
  });

  it("names the file when it cannot be read", () => {
    const file = join(dir, "missing.json");
    expect(() => loadCatalogFile(file)).toThrow(`catalog file ${file} cannot be read (no such file)`);
  });

  it("a JSON syntax error names the line and column", () => {
    const message = errorOf('{\n  "products": [\n    {"key": "ab", "name": "x",}\n  ]\n}');
    expect(message).toContain("catalog file products.json is not valid");
    expect(message).toMatch(/line 3:\d+: JSON syntax error: \w+/);
    expect(errorOf("")).toMatch(/JSON syntax error/);
    expect(errorOf('// a comment\n{"products": []}')).toMatch(/line 1:1: JSON syntax error/);
  });

  it("names each bad entry by index and key, the field, its line, what was expected and what was found", () => {
    const text = [
      "{",
      '  "products": [',
      '    {"key": "good", "name": "Good"},',
      '    {"key": "bad", "name": " ", "trial_days": 0, "price": 10},',
      '    {"name": "Keyless"},',
      '    {"key": "Upper", "name": "U", "trial_days": 1.5}',
      "  ]",
      "}",
    ].join("\n");
    const lines = errorOf(text).split("\n");
    expect(lines).toContainEqual(
      expect.stringMatching(/^ {2}line 4:\d+, products\[1\] \("bad"\)\.name: must be a display name .*\(got " "\)$/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^ {2}line 4:\d+, products\[1\] \("bad"\)\.trial_days: must be an integer from 1 to 365.*\(got 0\)$/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^ {2}line 4:\d+, products\[1\] \("bad"\)\.price: is not a known field \(known: key, name, description, trial_days\)$/,
      ),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}line 5:\d+, products\[2\]\.key: is required$/));
    expect(lines).toContainEqual(
      expect.stringMatching(/^ {2}line 6:\d+, products\[3\] \("Upper"\)\.key: must be a key of 2-63 characters/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}line 6:\d+, products\[3\] \("Upper"\)\.trial_days: .*\(got 1\.5\)$/));
    expect(lines.some((l) => l.includes("products[0]"))).toBe(false);
  });

  it("refuses duplicate keys, an empty list and a wrong top level", () => {
    expect(errorOf('{"products": [\n{"key": "ab", "name": "A"},\n{"key": "ab", "name": "B"}]}')).toMatch(
      /line 3:\d+, products\[1\] \("ab"\)\.key: duplicates products\[0\]/,
    );
    expect(errorOf('{"products": []}')).toMatch(/products: must be a list of 1 to 1000 products/);
    expect(errorOf("[]")).toMatch(/\(top level\): must be an object \{"products": \[\.\.\.\]\}/);
    expect(errorOf('{"products": [{"key": "ab", "name": "A"}], "version": 2}')).toMatch(
      /version: is not a known field \(known: products\)/,
    );
  });
});
