import { hash } from "node:crypto";
import { Type } from "@sinclair/typebox";
import type { FastifyReply } from "fastify";
import * as client from "openid-client";
import type { SsoSettings } from "../config.js";
import type { OidcRelyingParty } from "../domain/access/oidc.js";
import { SignInError } from "../domain/access/oidc.js";
import { endSession, signIn } from "../domain/access/people.js";
import type { SessionService } from "../domain/access/sessions.js";
import { AppError } from "../domain/errors.js";
import { ProblemRef } from "../schemas/common.js";
import { loginStateInsert, loginStateTake } from "../store/sessions.js";
import { type ConsoleCookies, readCookie, sameOrigin, setCookie } from "./session-cookie.js";
import type { App, Deps } from "./types.js";

export interface SsoDeps extends Deps {
  /** Null when OIDC_ISSUER is unset. */
  rp: OidcRelyingParty | null;
  sessions: SessionService;
  cookies: ConsoleCookies;
}

const tags = ["auth"];
const LOGIN_TTL_MS = 10 * 60_000;
const CONSOLE = "/console/";
const stateDigest = (state: string) => hash("sha256", state, "base64url");
const html = (description: string) => ({ description, content: { "text/html": { schema: Type.String() } } });
const redirect = (description: string) => Type.Null({ description });

/**
 * `return_to` as given when it is a path under /console/ once normalised
 * (so `/console/../v1`, `//evil.example`, `https://evil.example` or a
 * backslash are not); else the console's start.
 */
export function safeReturnTo(value: unknown): string {
  if (typeof value !== "string" || value.length > 2000 || !value.startsWith(CONSOLE) || /[\\\p{Cc}]/u.test(value)) return CONSOLE;
  const base = "http://registry.invalid";
  const url = URL.parse(value, base);
  if (url === null || url.origin !== base || !url.pathname.startsWith(CONSOLE) || url.pathname.includes("//")) return CONSOLE;
  return `${url.pathname}${url.search}${url.hash}`;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

/** The pages a person's browser lands on when a sign-in does not end in the console. */
function page(reply: FastifyReply, status: number, title: string, text: string): FastifyReply {
  const body =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} - tenant-registry</title></head>` +
    `<body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p><p><a href="${CONSOLE}">Back to the console</a></p></main></body></html>`;
  return reply.code(status).type("text/html; charset=utf-8").send(body);
}

export async function ssoRoutes(app: App, { db, config, rp, sessions, cookies }: SsoDeps): Promise<void> {
  const sso: SsoSettings = config.sso;

  app.get(
    "/v1/auth/providers",
    {
      schema: {
        tags,
        summary: "How people can sign in",
        description: "Needs no token. `oidc`: single sign-on through the identity provider is configured (GET /v1/auth/login).",
        response: { 200: Type.Object({ oidc: Type.Boolean() }, { additionalProperties: false }) },
      },
    },
    async () => ({ oidc: rp !== null }),
  );

  app.get(
    "/v1/auth/login",
    {
      schema: {
        tags,
        summary: "Sign in through the identity provider",
        description:
          "Needs no token. Redirects (302) to the identity provider's authorization endpoint: Authorization Code with PKCE (S256), `state` and `nonce`. " +
          "`return_to`: where the console continues after signing in; only a path under /console/ is taken, anything else means /console/. " +
          "404 when single sign-on is not configured; 503 when the identity provider cannot be reached.",
        querystring: Type.Object({ return_to: Type.Optional(Type.String()) }),
        response: { 302: redirect("To the identity provider."), 404: ProblemRef, 503: ProblemRef },
      },
    },
    async (req, reply) => {
      if (!rp) throw new AppError("not_found", "single sign-on is not configured (OIDC_ISSUER)");
      const checks = { state: client.randomState(), nonce: client.randomNonce(), codeVerifier: client.randomPKCECodeVerifier() };
      const url = await rp.authorizationUrl(checks);
      await loginStateInsert(db, {
        stateHash: stateDigest(checks.state),
        nonce: checks.nonce,
        codeVerifier: checks.codeVerifier,
        returnTo: safeReturnTo(req.query.return_to),
        ttlMs: LOGIN_TTL_MS,
      });
      setCookie(reply, cookies, cookies.login, checks.state, LOGIN_TTL_MS / 1000);
      return reply.redirect(url.href, 302);
    },
  );

  app.get(
    "/v1/auth/callback",
    {
      schema: {
        tags,
        summary: "Finish signing in (the identity provider's redirect)",
        description:
          "Needs no token; the identity provider sends the browser here. Checks `state` (once, in the browser that started the sign-in), " +
          "exchanges the code, validates the ID token (signature from the issuer's JWKS, iss, aud, exp, nonce) and maps the role claim. " +
          "Then starts a session (cookie `tr_session`, or `__Host-tr_session` behind https) and redirects to `return_to`. " +
          "Refusals are HTML pages: 400 for a missing, unknown, used or foreign state or an answer that does not validate; " +
          "403 when the claims give no role in tenant-registry or the person is disabled.",
        querystring: Type.Object({}, { additionalProperties: true }),
        response: {
          302: redirect("Signed in: to the console."),
          400: html("The sign-in could not be finished."),
          403: html("No role in tenant-registry, or access disabled."),
          404: ProblemRef,
          503: html("The identity provider cannot be reached."),
        },
      },
    },
    async (req, reply) => {
      if (!rp) throw new AppError("not_found", "single sign-on is not configured (OIDC_ISSUER)");
      const bound = readCookie(req, cookies.login);
      setCookie(reply, cookies, cookies.login, "", 0);
      const query = req.query as Record<string, unknown>;
      const state = query.state;
      if (typeof state !== "string" || state === "") {
        return page(
          reply,
          400,
          "Sign-in failed",
          "The identity provider's answer carries no state. Start signing in again from the console.",
        );
      }
      if (bound !== state) {
        return page(
          reply,
          400,
          "Sign-in failed",
          "This sign-in was not started in this browser, or it took too long. Start again from the console.",
        );
      }
      const pending = await loginStateTake(db, stateDigest(state));
      if (!pending) {
        return page(reply, 400, "Sign-in failed", "This sign-in is unknown, expired or already used. Start again from the console.");
      }
      if (typeof query.error === "string") {
        return page(reply, 400, "Sign-in failed", `The identity provider refused the sign-in (${query.error.slice(0, 100)}).`);
      }
      const callbackUrl = new URL(rp.settings.redirectUri);
      callbackUrl.search = req.url.slice(req.url.indexOf("?"));
      let claims: Awaited<ReturnType<OidcRelyingParty["signIn"]>>;
      try {
        claims = await rp.signIn(callbackUrl, { state, nonce: pending.nonce, codeVerifier: pending.code_verifier });
      } catch (err) {
        if (err instanceof SignInError) return page(reply, 400, "Sign-in failed", `${err.message}. Start again from the console.`);
        if (err instanceof AppError && err.code === "unavailable") {
          return page(reply, 503, "Sign-in unavailable", "The identity provider cannot be reached. Try again shortly.");
        }
        throw err;
      }
      const outcome = await signIn(db, sessions, claims, rp.settings);
      if (outcome.result === "no_role") {
        return page(
          reply,
          403,
          "No access",
          `You (${claims.email ?? claims.subject}) have no role in tenant-registry. Ask an administrator to add you to a group that gives one.`,
        );
      }
      if (outcome.result === "disabled") {
        return page(reply, 403, "Access disabled", "Your access to tenant-registry is disabled. Ask an administrator to enable it.");
      }
      setCookie(reply, cookies, cookies.session, outcome.secret);
      return reply.redirect(pending.return_to, 302);
    },
  );

  app.post(
    "/v1/auth/logout",
    {
      schema: {
        tags,
        summary: "Sign out",
        description:
          "Ends the session of the request's cookie, on every instance, and clears the cookie: 204, also without a session. " +
          "A request carrying a live session must come from the registry's own origin (403 otherwise, and the session goes on).",
        response: { 204: Type.Null({ description: "Signed out." }), 403: ProblemRef },
      },
    },
    async (req, reply) => {
      const secret = readCookie(req, cookies.session);
      const facts = secret === undefined ? null : await sessions.find(secret);
      if (facts) {
        if (!sameOrigin(req, sso.publicOrigin)) {
          throw new AppError("forbidden", "a request signed in by cookie that changes anything must come from the registry's own origin");
        }
        const name = facts.person.email ?? facts.person.subject;
        await db.tx((q) => endSession(q, facts.id, { principal: name, role: facts.person.role, actorId: name }, sessions.opts.idleMs));
      }
      setCookie(reply, cookies, cookies.session, "", 0);
      return reply.code(204).send(null);
    },
  );
}
