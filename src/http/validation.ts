import { Ajv, type Options } from "ajv";
import addFormats from "ajv-formats";
import type { FastifyInstance } from "fastify";

/**
 * Two validators: query strings, params and headers arrive as text, so they
 * are coerced to the schema's types; JSON bodies are not, so `"plan": 1` or
 * `"limit": "5"` in a body is a 400 rather than silently converted. Unknown
 * fields fail (additionalProperties: false) instead of being stripped.
 */
function makeAjv(coerceTypes: Options["coerceTypes"]): Ajv {
  const ajv = new Ajv({
    coerceTypes,
    useDefaults: true,
    removeAdditional: false,
    allErrors: true,
    strict: false,
  });
  addFormats.default(ajv, ["date-time", "uuid", "uri"]);
  return ajv;
}

export function registerValidation(app: FastifyInstance): void {
  const strict = makeAjv(false);
  const coercing = makeAjv("array");
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const ajv = httpPart === "body" ? strict : coercing;
    return ajv.compile(schema);
  });
}
