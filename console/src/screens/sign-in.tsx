import { useState } from "preact/hooks";
import { ErrorNote, PageTitle } from "../components/ui.js";

/** The identity provider's sign-in starts at the registry, which brings the browser back to this console path. */
function signInWithSso(): void {
  window.location.assign(`/v1/auth/login?return_to=${encodeURIComponent(window.location.pathname + window.location.search)}`);
}

export function SignIn({ onSignIn, sso, notice }: { onSignIn(token: string): Promise<void>; sso: boolean; notice: string | undefined }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await onSignIn(token.trim());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="sign-in">
      <PageTitle>tenant-registry console</PageTitle>
      {sso ? (
        <>
          <p>Sign in through your company's identity provider:</p>
          <button type="button" class="primary" onClick={signInWithSso}>
            Sign in with SSO
          </button>
          <p>Or sign in with an admin or auditor token of this registry. It is kept for this browser tab only.</p>
        </>
      ) : (
        <p>Sign in with an admin or auditor token of this registry. It is kept for this browser tab only.</p>
      )}
      <form onSubmit={submit}>
        <label for="token">Token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellcheck={false}
          required
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      {error instanceof Error && !("problem" in error) ? (
        <p class="error" role="alert">
          {error.message}
        </p>
      ) : (
        <ErrorNote error={error} />
      )}
    </main>
  );
}
