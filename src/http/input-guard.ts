import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from "fastify";
import { AppError, type FieldError } from "../domain/errors.js";
import { badString } from "../domain/json-input.js";

/**
 * Query strings and path parameters with a NUL or an unpaired surrogate
 * (`%00`, `%ED%A0%80` decoded leniently) are refused before validation,
 * naming the parameter, instead of reaching the store and failing there.
 * JSON bodies get the same check, and a depth bound, in the body parser.
 */
export function registerInputGuard(app: FastifyInstance): void {
  // Per route, and only where input can arrive: a route with no path parameters whose query schema
  // admits no field (input-policy.ts) refuses any query in validation anyway, and pays nothing here.
  app.addHook("onRoute", (route) => {
    if (!mayCarryInput(route)) return;
    const hooks = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    route.preValidation = [guard, ...hooks];
  });
}

function guard(req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
  const errors = [...badParts("querystring", req.query), ...badParts("params", req.params)];
  if (errors.length > 0) done(new AppError("invalid_input", `${errors[0]?.field} ${errors[0]?.message}`, { errors }));
  else done();
}

function mayCarryInput(route: RouteOptions): boolean {
  if (route.url.includes(":") || route.url.includes("*")) return true;
  const query = route.schema?.querystring as { additionalProperties?: unknown; properties?: object } | undefined;
  return !(query?.additionalProperties === false && Object.keys(query.properties ?? {}).length === 0);
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
