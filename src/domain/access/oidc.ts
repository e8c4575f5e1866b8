import * as client from "openid-client";
import type { OidcSettings } from "../../config.js";
import { AppError } from "../errors.js";
import type { Log } from "../log.js";

/** What the relying party learnt from a validated sign-in. */
export interface SignInClaims {
  issuer: string;
  subject: string;
  email: string | null;
  name: string | null;
  /** The role claim's values (a string claim gives one). */
  roleValues: string[];
}

/** The checks a callback must pass, as kept with the sign-in's state. */
export interface SignInChecks {
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** The identity provider's answer could not be accepted (a bad ID token, a refused code): the person sees why, generally. */
export class SignInError extends Error {
  override name = "SignInError";
}

/**
 * The OpenID Connect relying party, through openid-client (discovery,
 * PKCE, the code exchange and ID-token validation against the issuer's
 * JWKS: signature, iss, aud, exp, nonce). Discovery runs at start; when the
 * issuer is down it is retried at the next sign-in, which meanwhile gets a
 * 503.
 */
export class OidcRelyingParty {
  private config: Promise<client.Configuration> | undefined;

  constructor(
    readonly settings: OidcSettings,
    private readonly log: Log,
  ) {}

  /** Discovery now; a failure is logged and left for the next sign-in to retry. */
  async start(): Promise<void> {
    await this.configuration().catch(() => undefined);
  }

  async authorizationUrl(checks: SignInChecks): Promise<URL> {
    const config = await this.configuration();
    return client.buildAuthorizationUrl(config, {
      redirect_uri: this.settings.redirectUri,
      scope: this.settings.scopes.join(" "),
      code_challenge: await client.calculatePKCECodeChallenge(checks.codeVerifier),
      code_challenge_method: "S256",
      state: checks.state,
      nonce: checks.nonce,
    });
  }

  /** Exchanges the code of `callbackUrl` and validates the ID token; claims missing from it are read from userinfo. */
  async signIn(callbackUrl: URL, checks: SignInChecks): Promise<SignInClaims> {
    const config = await this.configuration();
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      throw this.refused(err);
    }
    const idClaims = tokens.claims();
    if (!idClaims) throw new SignInError("the identity provider sent no ID token");
    const claims: Record<string, unknown> = { ...idClaims };
    const role = this.settings.roleClaim;
    if (claims.email === undefined || claims.name === undefined || claims[role] === undefined) {
      const info = config.serverMetadata().userinfo_endpoint;
      if (info) {
        try {
          const more = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);
          for (const [k, v] of Object.entries(more)) if (claims[k] === undefined) claims[k] = v;
        } catch (err) {
          throw this.refused(err);
        }
      }
    }
    return {
      issuer: idClaims.iss,
      subject: idClaims.sub,
      email: typeof claims.email === "string" ? claims.email : null,
      name: typeof claims.name === "string" ? claims.name : null,
      roleValues: claimValues(claims[role]),
    };
  }

  private refused(err: unknown): Error {
    if (err instanceof AppError) return err;
    const message = err instanceof Error ? err.message : String(err);
    this.log.warn(
      { err: { message, code: (err as { code?: unknown }).code } },
      "sign-in refused: the identity provider's answer is not valid",
    );
    return new SignInError("the identity provider's answer could not be validated");
  }

  private configuration(): Promise<client.Configuration> {
    this.config ??= this.discover().catch((err: unknown) => {
      this.config = undefined;
      this.log.error(
        { err: { message: (err as Error).message } },
        "OIDC discovery failed: single sign-on is unavailable until it succeeds",
      );
      throw new AppError("unavailable", "the identity provider cannot be reached; try again shortly", { retryAfterSeconds: 5 });
    });
    return this.config;
  }

  private async discover(): Promise<client.Configuration> {
    const issuer = new URL(this.settings.issuer);
    const insecure = issuer.protocol === "http:";
    const options: client.DiscoveryRequestOptions = { timeout: 10, ...(insecure ? { execute: [client.allowInsecureRequests] } : {}) };
    const found = await client.discovery(issuer, this.settings.clientId, undefined, client.None(), options);
    const server = found.serverMetadata();
    const secret = this.settings.clientSecret;
    let auth: client.ClientAuth = client.None();
    if (secret !== undefined) {
      // client_secret_basic is the default when the issuer does not say (RFC 8414).
      const offered = server.token_endpoint_auth_methods_supported ?? ["client_secret_basic"];
      auth =
        !offered.includes("client_secret_basic") && offered.includes("client_secret_post")
          ? client.ClientSecretPost(secret)
          : client.ClientSecretBasic(secret);
    }
    const config = new client.Configuration(server, this.settings.clientId, secret === undefined ? {} : { client_secret: secret }, auth);
    config.timeout = 10;
    if (insecure) client.allowInsecureRequests(config);
    // By default an ID token from the token endpoint is trusted on TLS alone (OIDC Core 3.1.3.7 allows
    // it); the registry also checks its signature against the issuer's JWKS, as SPEC asks, so a token
    // endpoint answer that was tampered with (or a misrouted one) cannot sign anyone in.
    client.enableNonRepudiationChecks(config);
    return config;
  }
}

function claimValues(v: unknown): string[] {
  if (typeof v === "string") return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === "string");
  return [];
}
