import { AppError } from "../domain/errors.js";

/**
 * Postgres SQLSTATEs we act on. Everything a driver throws passes through
 * `translateDbError`, the one place database failures become domain errors.
 */
export const PG = {
  UNIQUE_VIOLATION: "23505",
  FOREIGN_KEY_VIOLATION: "23503",
  CHECK_VIOLATION: "23514",
  NOT_NULL_VIOLATION: "23502",
  INVALID_TEXT_REPRESENTATION: "22P02",
  CHARACTER_NOT_IN_REPERTOIRE: "22021",
  UNTRANSLATABLE_CHARACTER: "22P05",
  DATETIME_OVERFLOW: "22008",
  INVALID_DATETIME_FORMAT: "22007",
  NUMERIC_OUT_OF_RANGE: "22003",
  STRING_TOO_LONG: "22001",
  INVALID_TIME_ZONE_DISPLACEMENT: "22009",
  SERIALIZATION_FAILURE: "40001",
  DEADLOCK_DETECTED: "40P01",
  QUERY_CANCELED: "57014",
  ADMIN_SHUTDOWN: "57P01",
  CRASH_SHUTDOWN: "57P02",
  CANNOT_CONNECT_NOW: "57P03",
  TOO_MANY_CONNECTIONS: "53300",
  STATEMENT_TOO_COMPLEX: "54001",
  PROGRAM_LIMIT_EXCEEDED: "54000",
  INVALID_PARAMETER_VALUE: "22023",
  /** 0004_audit.sql: assigning an audit id stalled; the database is overloaded. */
  AUDIT_ID_STALLED: "TRA01",
} as const;

/** Messages for constraint names, so a conflict tells the caller what clashed. */
const CONSTRAINT_DETAIL: Record<string, string> = {
  tenants_slug_key: "a tenant with this slug already exists",
  tenants_contract_range: "contract_end must not be before contract_start",
  audit_events_metadata_depth: "metadata is nested more than 32 levels deep",
  api_keys_prefix_key: "an API key with this prefix already exists",
  entitlements_tenant_id_fkey: "tenant not found",
  entitlements_product_fkey: "product not found",
  api_keys_tenant_id_fkey: "tenant not found",
  api_keys_product_fkey: "product not found",
  audit_events_tenant_id_fkey: "tenant not found",
  audit_events_product_fkey: "product not found",
};

interface DriverError {
  code?: string;
  constraint?: string;
  message?: string;
}

const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "EAI_AGAIN"]);

export function translateDbError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = (err ?? {}) as DriverError;
  const code = e.code ?? "";
  const constraint = e.constraint;
  const known = constraint ? CONSTRAINT_DETAIL[constraint] : undefined;
  switch (code) {
    case PG.UNIQUE_VIOLATION:
      return new AppError("conflict", known ?? "the resource already exists", { constraint });
    case PG.FOREIGN_KEY_VIOLATION:
      return new AppError("not_found", known ?? "a referenced resource was not found", { constraint });
    case PG.CHECK_VIOLATION:
    case PG.NOT_NULL_VIOLATION:
      return new AppError("invalid_input", known ?? "the value breaks a rule of the resource", { constraint });
    case PG.INVALID_TEXT_REPRESENTATION:
    case PG.CHARACTER_NOT_IN_REPERTOIRE:
    case PG.UNTRANSLATABLE_CHARACTER:
    case PG.DATETIME_OVERFLOW:
    case PG.INVALID_DATETIME_FORMAT:
    case PG.NUMERIC_OUT_OF_RANGE:
    case PG.STRING_TOO_LONG:
    case PG.INVALID_PARAMETER_VALUE:
    // RFC 3339 allows offsets to +-23:59; PostgreSQL stops at +-15:59.
    case PG.INVALID_TIME_ZONE_DISPLACEMENT:
      return new AppError("invalid_input", "a value could not be stored (bad characters or out of range)");
    // e.g. JSON nested deeper than the database parses.
    case PG.STATEMENT_TOO_COMPLEX:
    case PG.PROGRAM_LIMIT_EXCEEDED:
      return new AppError("invalid_input", "a value is too large or too deeply nested to store");
    case PG.SERIALIZATION_FAILURE:
    case PG.DEADLOCK_DETECTED:
      return new AppError("conflict", "a concurrent change got in the way; retry the request");
  }
  if (
    code.startsWith("08") ||
    code === PG.QUERY_CANCELED ||
    code === PG.ADMIN_SHUTDOWN ||
    code === PG.CRASH_SHUTDOWN ||
    code === PG.CANNOT_CONNECT_NOW ||
    code === PG.TOO_MANY_CONNECTIONS ||
    code === PG.AUDIT_ID_STALLED ||
    CONNECTION_CODES.has(code) ||
    isConnectionMessage(e.message)
  ) {
    // The cause reaches the logs (pino's err serializer appends it), never the response.
    const unavailable = new AppError("unavailable", "the database is unavailable; retry shortly", { retryAfterSeconds: 1 });
    unavailable.cause = err;
    return unavailable;
  }
  const wrapped = new AppError("internal", "internal error");
  wrapped.cause = err;
  return wrapped;
}

function isConnectionMessage(message: string | undefined): boolean {
  if (!message) return false;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection timeout|Query read timeout|Cannot use a pool after calling end|PGlite is closed/i.test(
    message,
  );
}
