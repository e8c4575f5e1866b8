import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { LightMyRequestResponse } from "fastify";
import Provider, { type Configuration } from "oidc-provider";

/**
 * A real OpenID Provider for tests: `oidc-provider` (the certified Node
 * implementation) on 127.0.0.1 at a random port, with its own interactive
 * login form (devInteractions: any password; the login names the account).
 *
 * - `confidential`: a client with a secret (client_secret_basic);
 *   `public`: a client without one (PKCE alone).
 * - Accounts (ACCOUNTS): `alice` (groups registry-admins), `bob`
 *   (registry-auditors), `carol` (staff: no role in the registry). Add or
 *   change one with `setAccount`.
 * - `env(publicUrl)`: the registry settings that use it.
 * - `login(url, account)`: drives a sign-in with plain HTTP (fetch with a
 *   cookie jar, posting the provider's forms as a browser would) from the
 *   authorization URL to the redirect back to the registry, whose URL it
 *   returns. Chromium tests can instead fill the same form (`login`,
 *   `password`, then Continue on the consent page).
 */
export interface TestIdp {
  issuer: string;
  confidential: { clientId: string; clientSecret: string };
  public: { clientId: string };
  setAccount(id: string, claims: AccountClaims): void;
  env(publicUrl: string, client?: "confidential" | "public"): Record<string, string>;
  login(authorizationUrl: string, account: string): Promise<URL>;
  close(): Promise<void>;
}

export interface AccountClaims {
  email?: string;
  name?: string;
  groups?: string[] | string;
  [claim: string]: unknown;
}

export const ACCOUNTS: Record<string, AccountClaims> = {
  alice: { email: "alice@example.com", name: "Alice Admin", groups: ["staff", "registry-admins"] },
  bob: { email: "bob@example.com", name: "Bob Auditor", groups: ["registry-auditors"] },
  carol: { email: "carol@example.com", name: "Carol Nobody", groups: ["staff"] },
};

export const ADMIN_GROUP = "registry-admins";
export const AUDITOR_GROUP = "registry-auditors";

export async function startTestIdp(opts: { redirectUris: string[] }): Promise<TestIdp> {
  const accounts = new Map(Object.entries(ACCOUNTS).map(([k, v]) => [k, { ...v }]));
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const confidential = { clientId: "tenant-registry", clientSecret: randomBytes(24).toString("base64url") };
  const publicClient = { clientId: "tenant-registry-public" };
  const config: Configuration = {
    clients: [
      {
        client_id: confidential.clientId,
        client_secret: confidential.clientSecret,
        redirect_uris: opts.redirectUris,
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
      {
        client_id: publicClient.clientId,
        redirect_uris: opts.redirectUris,
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "none",
      },
    ],
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"], groups: ["groups"] },
    scopes: ["openid", "email", "profile", "groups", "offline_access"],
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    cookies: { keys: [randomBytes(32).toString("hex")] },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    async findAccount(_ctx, sub) {
      const claims = accounts.get(sub);
      if (!claims) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...claims }) };
    },
  };
  const provider = new Provider(issuer, config);
  // Its dev-mode warnings (dev keys, dev interactions) are expected here.
  server.on("request", provider.callback());

  return {
    issuer,
    confidential,
    public: publicClient,
    setAccount(id, claims) {
      accounts.set(id, claims);
    },
    env(publicUrl, client = "confidential") {
      return {
        OIDC_ISSUER: issuer,
        OIDC_CLIENT_ID: client === "confidential" ? confidential.clientId : publicClient.clientId,
        ...(client === "confidential" ? { OIDC_CLIENT_SECRET: confidential.clientSecret } : {}),
        PUBLIC_URL: publicUrl,
        OIDC_ADMIN_VALUES: ADMIN_GROUP,
        OIDC_AUDITOR_VALUES: AUDITOR_GROUP,
        OIDC_SCOPES: "groups",
      };
    },
    login: (url, account) => driveLogin(url, account, issuer),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Follows redirects and posts forms (hidden fields kept, login/password filled) until the provider redirects away from itself. */
async function driveLogin(start: string, account: string, issuer: string): Promise<URL> {
  const jar = new Map<string, string>();
  let url = new URL(start);
  let body: URLSearchParams | undefined;
  for (let step = 0; step < 20; step++) {
    if (url.origin !== new URL(issuer).origin) return url;
    const res = await fetch(url, {
      method: body ? "POST" : "GET",
      redirect: "manual",
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") },
      ...(body ? { body } : {}),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair = ""] = c.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(c) || value === "") jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get("location");
    if (location) {
      await res.arrayBuffer();
      url = new URL(location, url);
      body = undefined;
      continue;
    }
    const html = await res.text();
    const form = /<form[^>]*action="([^"]+)"[^>]*method="post"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
    if (!form?.[1]) throw new Error(`the provider answered ${res.status} without a form or redirect: ${html.slice(0, 300)}`);
    body = new URLSearchParams();
    for (const input of (form[2] ?? "").matchAll(/<input[^>]*name="([^"]+)"[^>]*>/gi)) {
      const name = input[1] ?? "";
      const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? "";
      body.set(name, name === "login" ? account : name === "password" ? "any password" : value);
    }
    url = new URL(form[1].replaceAll("&amp;", "&"), url);
  }
  throw new Error("the sign-in did not finish within 20 steps");
}

/** The value a response sets for cookie `name` (undefined when it sets none). */
export const setCookieValue = (res: LightMyRequestResponse, name: string): string | undefined => {
  const raw = res.headers["set-cookie"];
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  const found = list.find((c) => c.startsWith(`${name}=`));
  return found?.slice(name.length + 1).split(";")[0];
};
