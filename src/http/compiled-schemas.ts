import { SerializerSelector } from "@fastify/fast-json-stringify-compiler";
import { Ajv, type Options, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";

/**
 * Compiled validators and response serializers, shared by every app in the
 * process and keyed by what they are compiled from (the schema's JSON), not
 * by the schema object: routes build their schemas when they register, so
 * each app holds its own objects with the same content. One registry
 * compiles the shared problem schema once instead of once per route and
 * status; a process that builds many apps (the tests) compiles each schema
 * once. Both maps are bounded by the distinct schemas in the code.
 *
 * TypeBox marks schemas with symbol keys, which JSON leaves out; neither Ajv
 * nor fast-json-stringify reads them.
 */

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

interface Validators {
  ajv: Ajv;
  compiled: Map<string, ValidateFunction>;
}
let validators: { body: Validators; text: Validators } | undefined;

/** The validator for one request part (body, or query string / params / headers). */
export function compileValidator(schema: object, httpPart: string | undefined): ValidateFunction {
  validators ??= {
    body: { ajv: makeAjv(false), compiled: new Map() },
    text: { ajv: makeAjv("array"), compiled: new Map() },
  };
  const v = httpPart === "body" ? validators.body : validators.text;
  const key = JSON.stringify(schema);
  let fn = v.compiled.get(key);
  if (!fn) {
    fn = v.ajv.compile(schema);
    v.compiled.set(key, fn);
  }
  return fn;
}

type SerializerFactory = ReturnType<typeof SerializerSelector>;
type Serializer = ReturnType<ReturnType<SerializerFactory>>;
const serializers = new Map<string, Serializer>();

/**
 * Fastify's own serializer factory (fast-json-stringify through
 * @fastify/fast-json-stringify-compiler), remembering what it compiled.
 * The key holds the shared schemas ($ref targets) and options of the app
 * as well as the route's schema, so apps that differ in them never share.
 */
export function cachedSerializerFactory(): SerializerFactory {
  const factory = SerializerSelector();
  return (externalSchemas, options) => {
    const compile = factory(externalSchemas, options);
    const context = JSON.stringify([externalSchemas ?? null, options ?? null]);
    return (route) => {
      const key = `${context}\n${JSON.stringify(route.schema)}`;
      let fn = serializers.get(key);
      if (!fn) {
        fn = compile(route);
        serializers.set(key, fn);
      }
      return fn;
    };
  };
}
