import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createRegistryClient, type RegistryClient, RegistryError } from "@tenant-registry/client";
import { type Command, InvalidArgumentError, Option } from "commander";

/** A mistake in how the CLI was called: exit 2, like commander's own usage errors. */
export class UsageError extends Error {}

export interface ClientOptions {
  url: string;
  token?: string;
  json?: boolean;
  actor?: string;
}

/** Add the options every command that talks to a running registry shares, and a help example. */
export function clientCommand(parent: Command, nameAndArgs: string, description: string, example: string): Command {
  return parent
    .command(nameAndArgs)
    .description(description)
    .addOption(new Option("--url <url>", "registry base URL").env("REGISTRY_URL").default("http://127.0.0.1:8080"))
    .addOption(new Option("--token <token>", "bearer token (default: REGISTRY_TOKEN, else $DATA_DIR/admin-token)").env("REGISTRY_TOKEN"))
    .addOption(new Option("--actor <who>", "the person you act for, recorded as the audit actor (X-Actor-Id)").env("REGISTRY_ACTOR"))
    .option("--json", "print JSON for scripts instead of tables")
    .addHelpText("after", `\nExample:\n  ${example}`);
}

// A registry started with `npm start` on this machine keeps its generated admin token there.
function localAdminToken(): string | undefined {
  const file = join(process.env.DATA_DIR || "data", "admin-token");
  return existsSync(file) ? readFileSync(file, "utf8").trim() || undefined : undefined;
}

/** The bearer token a client command uses: --token, REGISTRY_TOKEN, else the local admin token file. */
export function tokenOf(options: ClientOptions): string {
  const token = options.token || localAdminToken();
  if (!token) throw new UsageError("no token: pass --token or set REGISTRY_TOKEN (or run next to the registry's data/admin-token)");
  return token;
}

export function connect(options: ClientOptions): RegistryClient {
  const token = tokenOf(options);
  return createRegistryClient({ url: registryUrl(options.url), token, ...(options.actor ? { actorId: options.actor } : {}) });
}

/** --url as people type it: `127.0.0.1:8080` or `localhost:8080` means http://; anything else must be an http(s) URL. */
export function registryUrl(given: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(given) ? given : `http://${given}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(given)} is not a URL; expected e.g. http://127.0.0.1:8080`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--url ${JSON.stringify(given)}: expected an http:// or https:// URL, e.g. http://127.0.0.1:8080`);
  }
  return url.href.replace(/\/+$/, "");
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Parse a positive integer option; commander reports a bad one as a usage error. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer.");
  return n;
}

/**
 * A 404 from the registry says what kind of thing was missing ("tenant not
 * found"); name the one the operator asked for.
 */
export async function naming<T>(call: Promise<T>, what: string): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof RegistryError && err.status === 404) {
      throw new RegistryError({ ...err.problem, detail: `${err.problem.detail}: ${what}` });
    }
    throw err;
  }
}
