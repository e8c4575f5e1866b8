import { type TSchema, Type } from "@sinclair/typebox";
import { ERROR_CODES } from "../domain/errors.js";

/** A string enum, shown as `enum` in the OpenAPI document (not a union of consts). */
export const StringEnum = <const T extends readonly string[]>(values: T, options: { description?: string } = {}) =>
  Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...options });

/**
 * Free text of 1 to `max` characters once surrounding white space is
 * trimmed (the stored value is trimmed). Longer raw input is allowed only
 * for the white space around it.
 */
export const TrimmedText = (max: number, description: string) =>
  Type.String({
    minLength: 1,
    maxLength: max + 1000,
    pattern: `^\\s*\\S(?:[\\s\\S]{0,${max - 2}}\\S)?\\s*$`,
    description,
  });

export const Uuid = Type.String({ format: "uuid", description: "A UUID." });
export const Timestamp = Type.String({ format: "date-time", description: "RFC 3339 date-time, UTC." });

/**
 * A date-time the caller sends. RFC 3339 allows year 0000 and offsets up to
 * ±23:59; PostgreSQL stores neither (no year 0; offsets stop at ±15:59), so
 * the pattern refuses them up front, naming the field. Written for any
 * ECMA-262 or JSON-Schema regex engine (no `u` flag needed).
 */
export const DATE_TIME_INPUT_PATTERN =
  "^(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-.*(?:[Zz]|[+-](?:0[0-9]|1[0-5]):[0-5][0-9])$";
export const InputTimestamp = (description: string) =>
  Type.String({
    format: "date-time",
    pattern: DATE_TIME_INPUT_PATTERN,
    description: `${description} RFC 3339, years 0001 to 9999, offsets up to ±15:59.`,
    // Far in the future, so the example stays valid where the value must lie ahead (an API key's expires_at).
    examples: ["2099-01-31T09:30:00Z"],
  });
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const Cursor = Type.String({
  minLength: 1,
  maxLength: 512,
  description: "Opaque cursor from a previous page's `next_cursor`.",
});
export const NextCursor = Nullable(
  Type.String({ description: "Pass as `cursor` to get the next page; null when there are no more rows now." }),
);

export const limitParam = (dflt: number, max: number) =>
  Type.Integer({ minimum: 1, maximum: max, default: dflt, description: `Page size, 1 to ${max} (default ${dflt}).` });

export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const Problem = Type.Object(
  {
    type: Type.String({ description: "A URI naming the problem type." }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: StringEnum(ERROR_CODES, { description: "Stable machine-readable code." }),
    request_id: Type.Optional(Type.String({ description: "The request id, also in the logs." })),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          field: Type.String({ description: "Where the bad value is, e.g. `body/slug`." }),
          message: Type.String(),
        }),
        { description: "For invalid_input: each bad field." },
      ),
    ),
  },
  { $id: "Problem", title: "Problem", description: "RFC 9457 problem details." },
);

/** Reference to the shared problem schema, used in every route's error responses. */
export const ProblemRef = Type.Ref(Problem);
