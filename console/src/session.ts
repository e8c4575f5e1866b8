import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { createApi, type Me, type RegistryClient } from "./api.js";
import { TenantDirectory } from "./tenant-directory.js";

/** A token lives in sessionStorage: this tab only, never a URL, a cookie or localStorage. */
const TOKEN_KEY = "tenant-registry.token";

export const savedToken = (): string | null => sessionStorage.getItem(TOKEN_KEY);
export const saveToken = (token: string): void => sessionStorage.setItem(TOKEN_KEY, token);
export const forgetToken = (): void => sessionStorage.removeItem(TOKEN_KEY);

export interface Session {
  /** The bearer token; null when signed in by SSO (the registry's HttpOnly session cookie signs every call). */
  token: string | null;
  me: Me;
  api: RegistryClient;
  /** Tenant ids resolved to slug and name, shared by every screen. */
  tenants: TenantDirectory;
  /** admin may change things; auditor reads everything and sees no control that changes anything. */
  canWrite: boolean;
  signOut(message?: string): void;
}

export const SERVICE_REFUSED = "service tokens are for products: sign in with an admin or auditor token.";

export function newSession(token: string | null, me: Me, signOut: (message?: string) => void): Session {
  const api = createApi(token);
  // A token revoked or rotated, or a session ended, while the tab is open: back to sign-in, saying why.
  api.use({
    onResponse({ response }) {
      if (response.status === 401)
        signOut(token ? "Signed out: the registry no longer accepts this token." : "Signed out: your session has ended.");
    },
  });
  return { token, me, api, tenants: new TenantDirectory(api), canWrite: me.role === "admin", signOut };
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside a signed-in view");
  return s;
}
