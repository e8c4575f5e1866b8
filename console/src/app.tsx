import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError, createApi, ok } from "./api.js";
import { Shell } from "./components/shell.js";
import { SignIn } from "./screens/sign-in.js";
import { forgetToken, newSession, SERVICE_REFUSED, type Session, SessionContext, savedToken, saveToken } from "./session.js";

/** Whether the registry offers sign-in through its identity provider; an older registry (404) does not. */
async function ssoOffered(): Promise<boolean> {
  try {
    return (await ok(createApi(null).GET("/v1/auth/providers"))).oidc;
  } catch {
    return false;
  }
}

/**
 * Signed in (a session), signing in, or restoring the tab's session after a
 * reload: a token saved in this tab, else (when SSO is offered) the
 * registry's session cookie, which the page never sees.
 */
export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(true);
  const [sso, setSso] = useState(false);
  const [notice, setNotice] = useState<string | undefined>(undefined);

  const forget = useCallback((message?: string) => {
    forgetToken();
    setSession(null);
    setNotice(message);
  }, []);

  /** Sign in with a token, or with null by the session cookie an SSO sign-in set. */
  const start = useCallback(
    async (token: string | null) => {
      const me = await ok(createApi(token).GET("/v1/me"));
      if (me.role === "service") throw new Error(SERVICE_REFUSED);
      if (token) saveToken(token);
      setNotice(undefined);
      setSession(newSession(token, me, forget));
    },
    [forget],
  );

  /** Sign out: a token is forgotten; an SSO session is ended on the server first. */
  const signOut = useCallback(
    async (s: Session) => {
      if (s.token === null) await ok(s.api.POST("/v1/auth/logout"));
      forget("Signed out.");
    },
    [forget],
  );

  useEffect(() => {
    (async () => {
      const offered = await ssoOffered();
      setSso(offered);
      const token = savedToken();
      if (token) {
        try {
          await start(token);
        } catch (err) {
          // An unusable saved token (rotated, server restarted with another) sends the user back to sign in.
          forgetToken();
          setNotice(err instanceof ApiError ? `Signed out: ${err.problem.detail}` : String((err as Error).message));
        }
      } else if (offered) {
        // Back from the identity provider, or a reload: the cookie, if any, signs this in.
        await start(null).catch(() => undefined);
      }
    })().finally(() => setRestoring(false));
  }, [start]);

  if (restoring) return <p class="loading">Loading…</p>;
  if (!session) return <SignIn onSignIn={start} sso={sso} notice={notice} />;
  return (
    <SessionContext.Provider value={session}>
      <Shell onSignOut={() => signOut(session)} />
    </SessionContext.Provider>
  );
}
