import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError, createApi, ok } from "./api.js";
import { Shell } from "./components/shell.js";
import { SignIn } from "./screens/sign-in.js";
import { forgetToken, newSession, SERVICE_REFUSED, type Session, SessionContext, savedToken, saveToken } from "./session.js";

/** Signed in (a session), signing in, or restoring the tab's session after a reload. */
export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(() => savedToken() !== null);
  const [notice, setNotice] = useState<string | undefined>(undefined);

  const signOut = useCallback((message?: string) => {
    forgetToken();
    setSession(null);
    setNotice(message);
  }, []);

  const signIn = useCallback(
    async (token: string) => {
      const me = await ok(createApi(token).GET("/v1/me"));
      if (me.role === "service") throw new Error(SERVICE_REFUSED);
      saveToken(token);
      setNotice(undefined);
      setSession(newSession(token, me, signOut));
    },
    [signOut],
  );

  useEffect(() => {
    const token = savedToken();
    if (!token) return;
    signIn(token)
      .catch((err: unknown) => {
        // An unusable saved token (rotated, server restarted with another) sends the user back to sign in.
        forgetToken();
        setNotice(err instanceof ApiError ? `Signed out: ${err.problem.detail}` : String((err as Error).message));
      })
      .finally(() => setRestoring(false));
  }, [signIn]);

  if (restoring) return <p class="loading">Loading…</p>;
  if (!session) return <SignIn onSignIn={signIn} notice={notice} />;
  return (
    <SessionContext.Provider value={session}>
      <Shell />
    </SessionContext.Provider>
  );
}
