import type { Role } from "../roles.js";

// Glossary: a principal is who a request authenticates as. Authentication
// (http/auth.ts) resolves every request to exactly one, and everything after
// it — the route's roles, the audit actor, rate limits, GET /v1/me — reads
// only that.
// - bootstrap: a token from the environment (REGISTRY_ADMIN_TOKEN,
//   REGISTRY_TOKENS); for bootstrap and break-glass. No id: it is not stored.
// - token: a managed token, kept in the store (POST /v1/tokens).
// - person: someone signed in through the identity provider (a session).

export const PRINCIPAL_KINDS = ["bootstrap", "token", "person"] as const;
export type PrincipalKind = (typeof PRINCIPAL_KINDS)[number];

export interface Principal {
  kind: PrincipalKind;
  /** The stored row's id (managed token, person); null for bootstrap principals. */
  id: string | null;
  /** The principal name: the audit actor of its changes. */
  name: string;
  role: Role;
  /** A person's email (kind person). */
  email?: string;
  /** When this authentication stops being valid, epoch ms (a managed token's expiry, a session's end); null: no end. */
  expiresAt?: number | null;
}

/**
 * One way a credential (a bearer token, a session cookie's value) becomes a
 * principal. `peek` answers synchronously from memory when it can: the
 * principal, null when the credential is known not to be valid (revoked,
 * expired, unknown), undefined when the store must be asked; `lookup` asks
 * it. Time-bound validity (expiry, a rotation's grace, a session's timeouts)
 * is checked against `now` on every call, not only when the cache learns of
 * a change.
 */
export interface CredentialLeg {
  peek(credential: string, now: number): Principal | null | undefined;
  lookup(credential: string, now: number): Promise<Principal | null>;
}
