import type { FastifyInstance } from "fastify";

/**
 * JSON only (anything else is 415); an empty body with a JSON content type
 * reads as no body. `__proto__` and `constructor.prototype` keys are errors.
 */
export function registerJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser("error", "error");
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") return done(null, undefined);
    parse(req, text, done);
  });
}
