import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./openapi.js";

export type Problem = components["schemas"]["Problem"];
export type Tenant = components["schemas"]["Tenant"];
export type Entitlement = components["schemas"]["Entitlement"];
export type Product = components["schemas"]["Product"];
export type ApiKey = components["schemas"]["ApiKey"];
export type AuditEvent = components["schemas"]["AuditEvent"];
export type RegistryClient = Client<paths>;

/** A failed registry call, carrying the RFC 9457 problem the registry answered (or one describing why it could not answer). */
export class RegistryError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(`${problem.title}: ${problem.detail}`);
    this.name = "RegistryError";
    this.problem = problem;
  }
  get status(): number {
    return this.problem.status;
  }
  get code(): Problem["code"] {
    return this.problem.code;
  }
}

const isProblem = (x: unknown): x is Problem =>
  typeof x === "object" && x !== null && typeof (x as Problem).title === "string" && typeof (x as Problem).status === "number";

// Something between us and the registry (a proxy, a crash page) may answer without a problem body.
function problemFrom(error: unknown, response: Response): Problem {
  if (isProblem(error)) return error;
  const detail = typeof error === "string" && error ? error.slice(0, 200) : `HTTP ${response.status} from ${response.url}`;
  const code: Problem["code"] = response.status >= 500 ? "unavailable" : "internal";
  return { type: "about:blank", title: response.statusText || "Unexpected response", status: response.status, detail, code };
}

export interface RegistryClientOptions {
  /** Base URL of the registry, e.g. http://127.0.0.1:8080. */
  url: string;
  /** A bearer token of a registry principal. */
  token: string;
  /** Sent as X-Actor-Id: the person behind this caller, recorded as the audit actor. */
  actorId?: string;
  /** Abort a call after this long (default 10 s), so a hung registry cannot hang the caller. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** An openapi-fetch client typed from the committed OpenAPI document. */
export function createRegistryClient(options: RegistryClientOptions): RegistryClient {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const baseFetch = options.fetch ?? fetch;
  return createClient<paths>({
    baseUrl: options.url.replace(/\/+$/, ""),
    headers: { authorization: `Bearer ${options.token}`, ...(options.actorId ? { "x-actor-id": options.actorId } : {}) },
    fetch: (request: Request) => baseFetch(request, { signal: AbortSignal.timeout(timeoutMs) }),
  });
}

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/**
 * Await an openapi-fetch call and return its data, or throw a RegistryError:
 * with the registry's problem, or with an `unavailable` problem when the
 * registry could not be reached at all.
 */
export async function ok<T>(call: Promise<FetchResult<T>>): Promise<T> {
  let result: FetchResult<T>;
  try {
    result = await call;
  } catch (err) {
    const cause = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    throw new RegistryError({ type: "about:blank", title: "Registry unreachable", status: 503, detail: cause, code: "unavailable" });
  }
  if (!result.response.ok) throw new RegistryError(problemFrom(result.error, result.response));
  return result.data as T;
}
