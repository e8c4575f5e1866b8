import { useState } from "preact/hooks";
import { ErrorNote, PageTitle } from "../components/ui.js";

export function SignIn({ onSignIn, notice }: { onSignIn(token: string): Promise<void>; notice: string | undefined }) {
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
      <p>Sign in with an admin or auditor token of this registry. It is kept for this browser tab only.</p>
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
