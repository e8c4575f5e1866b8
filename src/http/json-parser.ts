import type { FastifyInstance } from "fastify";
import { AppError, type FieldError } from "../domain/errors.js";
import { BODY_MAX_DEPTH, jsonInputError } from "../domain/json-input.js";

/**
 * JSON only (anything else is 415); an empty body with a JSON content type
 * reads as no body. `__proto__` and `constructor.prototype` keys are errors
 * (400, with an `errors` entry naming where the key is), and so is anything
 * that could not be stored and served back (json-input.ts).
 */
export function registerJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser("error", "error");
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") return done(null, undefined);
    parse(req, text, (err: Error | null, value?: unknown) => {
      if (err) {
        // Fastify's parser reports a forbidden key as "not valid JSON"; find and name it (a second parse, on failure only).
        const forbidden = forbiddenKey(text);
        if (forbidden) return done(new AppError("invalid_input", `${forbidden.field} ${forbidden.message}`, { errors: [forbidden] }));
        return done(err);
      }
      const bad = jsonInputError(value, "body", BODY_MAX_DEPTH);
      if (bad) return done(new AppError("invalid_input", `${bad.field} ${bad.message}`, { errors: [bad] }));
      done(null, value);
    });
  });
}

/**
 * Where the first `__proto__` key, or `constructor` holding `prototype`, is in
 * `text`, or undefined when it is not valid JSON at all. `JSON.parse` keeps such keys
 * as plain own properties, so they can be found; read through property
 * descriptors, never `obj.__proto__`. Iterative: the body may be deep.
 */
function forbiddenKey(text: string): FieldError | undefined {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch {
    return undefined;
  }
  const stack: [unknown, string][] = [[root, "body"]];
  while (stack.length > 0) {
    const [value, path] = stack.pop() as [unknown, string];
    if (value === null || typeof value !== "object") continue;
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string;
      const child = Object.getOwnPropertyDescriptor(value, key)?.value as unknown;
      const field = `${path}/${key}`;
      if (!Array.isArray(value)) {
        if (key === "__proto__") return { field, message: "is not allowed: __proto__ may not be a key" };
        if (key === "constructor" && child !== null && typeof child === "object" && Object.hasOwn(child, "prototype")) {
          return { field: `${field}/prototype`, message: "is not allowed: constructor.prototype may not be a key" };
        }
      }
      stack.push([child, field]);
    }
  }
  return undefined;
}
