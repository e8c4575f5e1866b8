/**
 * admin: everything. service: what product services need (verify keys, append
 * audit, read tenants/entitlements/catalog, request products). auditor: every
 * GET, nothing else.
 */
export const ROLES = ["admin", "service", "auditor"] as const;
export type Role = (typeof ROLES)[number];
