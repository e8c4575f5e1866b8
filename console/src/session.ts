import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { createApi, type Me, type RegistryClient } from "./api.js";

/** The token lives in sessionStorage: this tab only, never a URL, a cookie or localStorage. */
const TOKEN_KEY = "tenant-registry.token";

export const savedToken = (): string | null => sessionStorage.getItem(TOKEN_KEY);
export const saveToken = (token: string): void => sessionStorage.setItem(TOKEN_KEY, token);
export const forgetToken = (): void => sessionStorage.removeItem(TOKEN_KEY);

export interface Session {
  token: string;
  me: Me;
  api: RegistryClient;
  /** admin may change things; auditor reads everything and sees no control that changes anything. */
  canWrite: boolean;
  signOut(message?: string): void;
}

export const SERVICE_REFUSED = "service tokens are for products: sign in with an admin or auditor token.";

export function newSession(token: string, me: Me, signOut: (message?: string) => void): Session {
  const api = createApi(token);
  // A token revoked or rotated while the tab is open: back to sign-in, saying why.
  api.use({
    onResponse({ response }) {
      if (response.status === 401) signOut("Signed out: the registry no longer accepts this token.");
    },
  });
  return { token, me, api, canWrite: me.role === "admin", signOut };
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside a signed-in view");
  return s;
}
