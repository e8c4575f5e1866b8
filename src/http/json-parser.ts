import type { FastifyInstance } from "fastify";
import { AppError } from "../domain/errors.js";
import { BODY_MAX_DEPTH, jsonInputError } from "../domain/json-input.js";

/**
 * JSON only (anything else is 415); an empty body with a JSON content type
 * reads as no body. `__proto__` and `constructor.prototype` keys are errors,
 * and so is anything that could not be stored and served back (json-input.ts).
 */
export function registerJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser("error", "error");
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") return done(null, undefined);
    parse(req, text, (err: Error | null, value?: unknown) => {
      if (err) return done(err);
      const bad = jsonInputError(value, "body", BODY_MAX_DEPTH);
      if (bad) return done(new AppError("invalid_input", `${bad.field} ${bad.message}`, { errors: [bad] }));
      done(null, value);
    });
  });
}
