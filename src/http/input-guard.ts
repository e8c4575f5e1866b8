import type { FastifyInstance } from "fastify";
import { AppError, type FieldError } from "../domain/errors.js";
import { badString } from "../domain/json-input.js";

/**
 * Query strings and path parameters with a NUL or an unpaired surrogate
 * (`%00`, `%ED%A0%80` decoded leniently) are refused before validation,
 * naming the parameter, instead of reaching the store and failing there.
 * JSON bodies get the same check, and a depth bound, in the body parser.
 */
export function registerInputGuard(app: FastifyInstance): void {
  app.addHook("preValidation", async (req) => {
    const errors = [...badParts("querystring", req.query), ...badParts("params", req.params)];
    if (errors.length > 0) throw new AppError("invalid_input", `${errors[0]?.field} ${errors[0]?.message}`, { errors });
  });
}

function badParts(part: string, values: unknown): FieldError[] {
  if (typeof values !== "object" || values === null) return [];
  const out: FieldError[] = [];
  for (const [key, value] of Object.entries(values)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      const why = typeof v === "string" ? badString(v) : undefined;
      if (why) {
        out.push({ field: `${part}/${key}`, message: why });
        break;
      }
    }
  }
  return out;
}
