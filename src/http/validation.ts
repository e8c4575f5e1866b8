import type { FastifyInstance } from "fastify";
import { compileValidator } from "./compiled-schemas.js";

/** Request validation with the process's shared validators (compiled-schemas.ts: bodies strict, text parts coerced). */
export function registerValidation(app: FastifyInstance): void {
  app.setValidatorCompiler(({ schema, httpPart }) => compileValidator(schema, httpPart));
}
