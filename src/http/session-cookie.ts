import type { FastifyReply, FastifyRequest } from "fastify";
import type { SsoSettings } from "../config.js";

/**
 * The console's cookies. Behind https they take the `__Host-` prefix (the
 * browser then insists on Secure, Path=/ and no Domain: no sibling host can
 * set or shadow them). `tr_session` carries the session's secret;
 * `tr_login` binds a sign-in in progress to the browser that started it,
 * so a callback URL carried to another browser (login CSRF) is refused.
 */
export interface ConsoleCookies {
  session: string;
  login: string;
  secure: boolean;
}

export function consoleCookies(sso: SsoSettings): ConsoleCookies {
  const prefix = sso.secureCookies ? "__Host-" : "";
  return { session: `${prefix}tr_session`, login: `${prefix}tr_login`, secure: sso.secureCookies };
}

/** The value of cookie `name` in the request's Cookie header (the first one, as browsers send the most specific first). */
export function readCookie(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== "string") return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return value === "" ? undefined : value;
  }
  return undefined;
}

/** Set-Cookie for `name` (values are base64url: no quoting needed); maxAgeSeconds 0 clears it. */
export function setCookie(reply: FastifyReply, cookies: ConsoleCookies, name: string, value: string, maxAgeSeconds?: number): void {
  const parts = [`${name}=${value}`, "Path=/", "HttpOnly", "SameSite=Lax"];
  if (cookies.secure) parts.push("Secure");
  if (maxAgeSeconds !== undefined) parts.push(`Max-Age=${maxAgeSeconds}`);
  const existing = reply.getHeader("set-cookie");
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing.map(String) : [String(existing)];
  reply.header("set-cookie", [...list, parts.join("; ")]);
}

/**
 * A cookie-authenticated change must come from the registry's own origin:
 * `Origin` equal to PUBLIC_URL's, or, with no `Origin`, `Sec-Fetch-Site:
 * same-origin`. Anything else (a foreign origin, neither header) is not.
 */
export function sameOrigin(req: FastifyRequest, publicOrigin: string | null): boolean {
  if (publicOrigin === null) return false;
  const origin = req.headers.origin;
  if (origin !== undefined) return origin === publicOrigin;
  return req.headers["sec-fetch-site"] === "same-origin";
}
