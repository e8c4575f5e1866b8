/**
 * The console's only door to the registry: the openapi-fetch client typed
 * from the committed OpenAPI document. Every generated type comes in through
 * this module, so an API change that breaks the console breaks its typecheck,
 * and the types' location is named once.
 */
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "../../packages/client/src/openapi.js";

export type Schemas = components["schemas"];
export type Tenant = Schemas["Tenant"];
export type Entitlement = Schemas["Entitlement"];
export type Product = Schemas["Product"];
export type ApiKey = Schemas["ApiKey"];
export type AuditEvent = Schemas["AuditEvent"];
export type Problem = Schemas["Problem"];
/** Who is signed in: name, role, kind (bootstrap, token or person) and, for a person, email and session end. */
export type Me = paths["/v1/me"]["get"]["responses"][200]["content"]["application/json"];
export type Role = Me["role"];
export type Plan = Tenant["plan"];
export type TenantStatus = Tenant["status"];
export type TenantPatch = NonNullable<paths["/v1/tenants/{id}"]["patch"]["requestBody"]>["content"]["application/json"];
export type AuditQuery = NonNullable<paths["/v1/audit"]["get"]["parameters"]["query"]>;
export type RegistryClient = Client<paths>;

export const PLANS: readonly Plan[] = ["starter", "growth", "enterprise"];
export const TENANT_STATUSES: readonly TenantStatus[] = ["pending", "active", "cancelled"];

/** A failed call, carrying the registry's problem (or one describing why it could not answer). */
export class ApiError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail);
    this.problem = problem;
  }
}

const isProblem = (x: unknown): x is Problem =>
  typeof x === "object" && x !== null && typeof (x as Problem).detail === "string" && typeof (x as Problem).status === "number";

export function problemOf(error: unknown, response?: Response): Problem {
  if (isProblem(error)) return error;
  const status = response?.status ?? 503;
  const detail = response ? `HTTP ${status} ${response.statusText}`.trim() : `the registry could not be reached (${String(error)})`;
  return { type: "about:blank", title: "Unexpected response", status, detail, code: status >= 500 ? "unavailable" : "internal" };
}

/** Headers that sign a call: the tab's bearer token, or none when the session cookie (SSO) does it. */
export const authHeaders = (token: string | null): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

/**
 * A client signing with the token, or, with none, with the session cookie
 * an SSO sign-in set (same origin only; the page itself never sees it).
 */
export function createApi(token: string | null): RegistryClient {
  return createClient<paths>({ baseUrl: window.location.origin, headers: authHeaders(token), credentials: "same-origin" });
}

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** Await an openapi-fetch call: its data, or an ApiError with the problem. */
export async function ok<T>(call: Promise<FetchResult<T>>): Promise<T> {
  let result: FetchResult<T>;
  try {
    result = await call;
  } catch (err) {
    throw new ApiError(problemOf(err));
  }
  if (result.error !== undefined || !result.response.ok) throw new ApiError(problemOf(result.error, result.response));
  return result.data as T;
}

/**
 * Webhook endpoints and deliveries, from the generated types. The screen
 * calls them with a plain authorised fetch so that a registry without the
 * webhook API (an older version) answers 404 and the screen says so.
 */
export type WebhookEndpoint = Schemas["Webhook"];
export type WebhookDelivery = Schemas["WebhookDelivery"];

export function rawCall<T>(token: string | null, method: "GET" | "POST", path: string): Promise<T | undefined> {
  return jsonCall<T>(token, method, path);
}

/** Managed tokens, people and their console sessions (SPEC "People and managed tokens"). */
export type ManagedToken = Schemas["ManagedToken"];
export type CreatedToken = paths["/v1/tokens"]["post"]["responses"][201]["content"]["application/json"];
export type Person = Schemas["Person"];
export type PersonSession = paths["/v1/sessions"]["get"]["responses"][200]["content"]["application/json"]["sessions"][number];

/** A JSON call with the session's credentials; the problem of a failed one as an ApiError. */
export async function jsonCall<T>(
  token: string | null,
  method: "GET" | "POST" | "DELETE",
  path: string,
  body?: unknown,
): Promise<T | undefined> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: { ...authHeaders(token), accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw new ApiError(problemOf(err));
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!response.ok) throw new ApiError(problemOf(parsed, response));
  return parsed as T | undefined;
}
