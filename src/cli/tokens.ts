import { ok, type RegistryClient } from "@tenant-registry/client";
import { type Command, InvalidArgumentError } from "commander";
import { type ClientOptions, clientCommand, connect, naming, UsageError, UUID } from "./context.js";
import { note, printJson, printRecord, printTable } from "./output.js";

const COLUMNS = ["id", "prefix", "name", "role", "expires_at", "last_used_at", "revoked_at", "rotated_to", "grace_ends_at"];

interface CreateOptions extends ClientOptions {
  role: "admin" | "service" | "auditor";
  expiresAt?: string;
  description?: string;
}

function graceSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 604_800) throw new InvalidArgumentError("must be a whole number of seconds, 0-604800.");
  return n;
}

/** A token's id, or the name of a live token (not revoked, not rotated out). */
async function tokenId(client: RegistryClient, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  const { tokens } = await ok(client.GET("/v1/tokens"));
  const live = tokens.find((t) => t.name === ref && t.revoked_at === null && t.rotated_to === null);
  if (!live) throw new UsageError(`no live token named "${ref}"; give its id (tenant-registry tokens list)`);
  return live.id;
}

export function tokensCommands(program: Command): void {
  const group = program
    .command("tokens")
    .description("Managed tokens for services, scripts and people without SSO: create, list, revoke, rotate.")
    .addHelpText("after", "\nExample:\n  tenant-registry tokens create billing-worker --role service");

  clientCommand(
    group,
    "create <name>",
    "Issue a managed token; its secret is printed once and never again. The name is the audit actor of what it does.",
    "tenant-registry tokens create billing-worker --role service --description 'billing nightly job'",
  )
    .requiredOption("--role <role>", "admin, service or auditor")
    .option("--expires-at <time>", "RFC 3339, in the future (default: never)")
    .option("--description <text>", "what the token is for")
    .action(async (name: string, o: CreateOptions) => {
      const body = { name, role: o.role, expires_at: o.expiresAt, description: o.description };
      const created = await ok(connect(o).POST("/v1/tokens", { body }));
      if (o.json) return printJson(created);
      printRecord(created);
      note("Keep the token now: the registry stores only its digest and cannot show it again.");
    });

  clientCommand(
    group,
    "list",
    "List managed tokens, newest first, revoked and rotated ones included.",
    "tenant-registry tokens list",
  ).action(async (o: ClientOptions) => {
    const { tokens } = await ok(connect(o).GET("/v1/tokens"));
    o.json ? printJson({ tokens }) : printTable(tokens, COLUMNS);
  });

  clientCommand(
    group,
    "revoke <token>",
    "Revoke a token (by id, or the name of a live one): it stops working on every instance within about a second.",
    "tenant-registry tokens revoke billing-worker",
  ).action(async (ref: string, o: ClientOptions) => {
    const client = connect(o);
    const id = await tokenId(client, ref);
    await naming(ok(client.DELETE("/v1/tokens/{id}", { params: { path: { id } } })), `token "${ref}"`);
    o.json ? printJson({ revoked: id }) : process.stdout.write(`revoked ${id}\n`);
  });

  clientCommand(
    group,
    "rotate <token>",
    "Issue a successor (same name, role and expiry; its secret printed once); the old token keeps working for the grace period.",
    "tenant-registry tokens rotate billing-worker --grace 3600",
  )
    .option("--grace <seconds>", "how long the old token keeps working, 0-604800 (default 86400)", graceSeconds)
    .action(async (ref: string, o: ClientOptions & { grace?: number }) => {
      const client = connect(o);
      const id = await tokenId(client, ref);
      const body = o.grace === undefined ? {} : { grace_seconds: o.grace };
      const created = await naming(ok(client.POST("/v1/tokens/{id}/rotate", { params: { path: { id } }, body })), `token "${ref}"`);
      if (o.json) return printJson(created);
      printRecord(created);
      note(`Keep the new token now. The old one (${id}) keeps working until its grace ends; roll it out before then.`);
    });
}
