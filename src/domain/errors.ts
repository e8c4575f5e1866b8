/**
 * The closed set of error codes every failure maps to, whatever raised it.
 * HTTP statuses are derived from the code in src/http/errors.ts, so a store
 * function can fail with `not_found` without knowing about HTTP.
 */
export const ERROR_CODES = [
  "invalid_input",
  "not_found",
  "conflict",
  "unauthorized",
  "forbidden",
  "rate_limited",
  "unavailable",
  "internal",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface FieldError {
  field: string;
  message: string;
}

export class AppError extends Error {
  override name = "AppError";
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extra: { errors?: FieldError[]; status?: number; constraint?: string; retryAfterSeconds?: number } = {},
  ) {
    super(detail);
  }
}

export const notFound = (what: string) => new AppError("not_found", `${what} not found`);
export const conflict = (detail: string) => new AppError("conflict", detail);
export const invalid = (field: string, message: string) =>
  new AppError("invalid_input", `${field}: ${message}`, { errors: [{ field, message }] });
