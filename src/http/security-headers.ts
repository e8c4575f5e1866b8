/**
 * Response headers by path prefix: the first rule whose prefix the path
 * starts with adds its headers to those every response carries. Add a rule
 * (say, a Content-Security-Policy for a static app) by adding a line here.
 */
type Headers = Readonly<Record<string, string>>;

const EVERY: Headers = { "x-content-type-options": "nosniff", "referrer-policy": "no-referrer" };

export const HEADER_RULES: readonly { prefix: string; headers: Headers }[] = [
  // The sign-in pages: plain HTML that loads nothing and may not be framed.
  {
    prefix: "/v1/auth/",
    headers: { "cache-control": "no-store", "content-security-policy": "default-src 'none'", "x-frame-options": "DENY" },
  },
  { prefix: "/v1", headers: { "cache-control": "no-store" } },
  // The API docs page is framed by nothing but needs no frame ban to work; leave it as @fastify/swagger-ui sets it.
  { prefix: "/docs", headers: {} },
  { prefix: "/", headers: { "x-frame-options": "DENY" } },
];

/** The full set of headers for a path, merged once per rule rather than per response. */
const merged = HEADER_RULES.map((r) => ({ prefix: r.prefix, headers: { ...EVERY, ...r.headers } }));

export function securityHeadersFor(url: string): Headers {
  for (const r of merged) if (url.startsWith(r.prefix)) return r.headers;
  return EVERY;
}
