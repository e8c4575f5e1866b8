import type { Static } from "@sinclair/typebox";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError, type ErrorCode, type FieldError } from "../domain/errors.js";
import { DATE_TIME_INPUT_PATTERN, type Problem } from "../schemas/common.js";

const STATUS: Record<ErrorCode, number> = {
  invalid_input: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
};

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

function codeFor(status: number): ErrorCode {
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404 || status === 405) return "not_found";
  if (status === 409) return "conflict";
  if (status === 429) return "rate_limited";
  if (status === 503) return "unavailable";
  if (status >= 500) return "internal";
  return "invalid_input";
}

/** The problem document as the shared schema describes it (one source for the type and the OpenAPI document). */
export type ProblemBody = Static<typeof Problem>;

export function problem(status: number, code: ErrorCode, detail: string, errors?: FieldError[]): ProblemBody {
  return {
    type: `urn:tenant-registry:problem:${code}`,
    title: TITLES[status] ?? "Error",
    status,
    detail,
    code,
    ...(errors ? { errors } : {}),
  };
}

export function sendProblem(req: FastifyRequest, reply: FastifyReply, body: ProblemBody): FastifyReply {
  body.request_id = req.id;
  return reply.code(body.status).type("application/problem+json").send(body);
}

interface AjvError {
  instancePath: string;
  message?: string;
  keyword: string;
  params: Record<string, unknown>;
}

function validationErrors(context: string, errs: AjvError[]): FieldError[] {
  const seen = new Set<string>();
  const out: FieldError[] = [];
  for (const e of errs) {
    let field = `${context}${e.instancePath}`;
    let message = e.message ?? "is invalid";
    if (e.keyword === "additionalProperties") {
      field = `${field}/${String(e.params.additionalProperty)}`;
      message = "is not a known field";
    } else if (e.keyword === "required") {
      field = `${field}/${String(e.params.missingProperty)}`;
      message = "is required";
    } else if (e.keyword === "enum" && Array.isArray(e.params.allowedValues)) {
      message = `must be one of: ${e.params.allowedValues.join(", ")}`;
    } else if (e.keyword === "pattern" && e.params.pattern === DATE_TIME_INPUT_PATTERN) {
      message = "must be an RFC 3339 date-time with a year from 0001 to 9999 and an offset within ±15:59";
    } else if (e.keyword === "const" || e.keyword === "anyOf") {
      message = "is not one of the allowed values";
    }
    // A union (e.g. a value or null) reports once per branch; one line per field and message is enough.
    const key = `${field}|${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ field, message });
  }
  return out;
}

/** Maps every failure — ours, Fastify's, validation, store — to one problem body. */
export function toProblem(err: unknown, log: FastifyRequest["log"]): ProblemBody {
  if (err instanceof AppError) {
    const status = err.extra.status ?? STATUS[err.code];
    if (status >= 500) log.error({ err: err.cause ?? err }, "request failed");
    const detail = status === 500 ? "internal error" : err.detail;
    return problem(status, err.code, detail, err.extra.errors);
  }
  const fe = err as FastifyError & { validationContext?: string; validation?: AjvError[] };
  if (fe.validation) {
    const errors = validationErrors(fe.validationContext ?? "request", fe.validation);
    const first = errors[0];
    return problem(400, "invalid_input", first ? `${first.field} ${first.message}` : "invalid request", errors);
  }
  const status = typeof fe.statusCode === "number" ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    return problem(status, codeFor(status), clientMessage(fe));
  }
  log.error({ err }, "request failed");
  return problem(500, "internal", "internal error");
}

/** Fastify's own 4xx messages are safe to show; keep them short and stable. */
function clientMessage(fe: FastifyError): string {
  switch (fe.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return "request body is too large";
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return "unsupported content type; send application/json";
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return "the JSON body is empty";
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return fe.message;
    default:
      return fe.message.split("\n")[0] ?? "bad request";
  }
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const body = toProblem(err, req.log);
    if (body.code === "unavailable" || body.code === "rate_limited") {
      const seconds = err instanceof AppError ? err.extra.retryAfterSeconds : undefined;
      reply.header("retry-after", String(seconds ?? 1));
    }
    return sendProblem(req, reply, body);
  });
}
