import { Type } from "@sinclair/typebox";
import type { FastifyInstance, FastifyRequest, RouteOptions } from "fastify";
import { AppError } from "../domain/errors.js";

const NO_QUERY = Type.Object({}, { additionalProperties: false });

/**
 * Typos fail loudly: a /v1 route that declares no query parameters accepts
 * none, and one that declares no body accepts none (activate, cancel,
 * DELETE), rather than ignoring what the caller thought it was sending.
 * Register before the routes: it rewrites each /v1 route as it is added.
 */
export function registerInputPolicy(app: FastifyInstance): void {
  app.addHook("onRoute", (route) => {
    if (route.url.startsWith("/v1/")) rejectUndeclaredInput(route);
  });
}

function rejectUndeclaredInput(route: RouteOptions): void {
  route.schema ??= {};
  route.schema.querystring ??= NO_QUERY;
  if (route.schema.body === undefined && route.method !== "GET" && route.method !== "HEAD") {
    const hooks = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
    route.preValidation = [...hooks, rejectBody];
  }
}

/** `{}` is accepted: many clients send it for "nothing". */
async function rejectBody(req: FastifyRequest): Promise<void> {
  const b = req.body;
  const empty = b === undefined || (typeof b === "object" && b !== null && !Array.isArray(b) && Object.keys(b).length === 0);
  if (!empty) {
    throw new AppError("invalid_input", "this endpoint takes no request body", { errors: [{ field: "body", message: "must be empty" }] });
  }
}
