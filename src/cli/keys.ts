import { text } from "node:stream/consumers";
import { ok } from "@tenant-registry/client";
import type { Command } from "commander";
import { type ClientOptions, clientCommand, connect, naming, positiveInt } from "./context.js";
import { note, printJson, printRecord, printTable } from "./output.js";
import { tenantId } from "./tenants.js";

const COLUMNS = ["id", "prefix", "name", "product", "scopes", "expires_at", "last_used_at", "revoked_at"];

interface CreateOptions extends ClientOptions {
  name: string;
  product?: string;
  scope?: string[];
  expiresAt?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function keysCommands(program: Command): void {
  const group = program
    .command("keys")
    .description("API keys tenants use against the products: create, list, revoke, verify.")
    .addHelpText("after", "\nExample:\n  tenant-registry keys create acme --name ci --product billing --scope read");

  clientCommand(
    group,
    "create <tenant>",
    "Issue a key; its plaintext is printed once and never again.",
    "tenant-registry keys create acme --name ci --product billing",
  )
    .requiredOption("--name <name>", "what the key is for")
    .option("--product <product>", "only this product (default: every product)")
    .option("--scope <scope>", "a scope the key holds (repeat for more)", collect)
    .option("--expires-at <time>", "RFC 3339, in the future")
    .action(async (ref: string, o: CreateOptions) => {
      const client = connect(o);
      const tenant_id = await tenantId(client, ref);
      const body = { tenant_id, name: o.name, product: o.product, scopes: o.scope, expires_at: o.expiresAt };
      const created = await naming(
        ok(client.POST("/v1/api-keys", { body })),
        o.product ? `tenant "${ref}" or product "${o.product}"` : `"${ref}"`,
      );
      if (o.json) return printJson(created);
      printRecord(created);
      note("Keep the key now: the registry stores only its hash and cannot show it again.");
    });

  clientCommand(group, "list <tenant>", "List a tenant's keys, newest first, revoked ones included.", "tenant-registry keys list acme")
    .option("--limit <n>", "at most this many (1-200)", positiveInt)
    .option("--cursor <cursor>", "continue from a previous page's next_cursor")
    .action(async (ref: string, o: ClientOptions & { limit?: number; cursor?: string }) => {
      const client = connect(o);
      const tenant_id = await tenantId(client, ref);
      const query = { tenant_id, limit: o.limit, cursor: o.cursor };
      const page = await ok(client.GET("/v1/api-keys", { params: { query } }));
      if (o.json) return printJson(page);
      printTable(page.api_keys, COLUMNS);
      if (page.next_cursor) note(`more: --cursor ${page.next_cursor}`);
    });

  clientCommand(group, "revoke <key-id>", "Revoke a key: it stops verifying at once.", "tenant-registry keys revoke 2f1c…").action(
    async (id: string, o: ClientOptions) => {
      await ok(connect(o).DELETE("/v1/api-keys/{id}", { params: { path: { id } } }));
      o.json ? printJson({ revoked: id }) : process.stdout.write(`revoked ${id}\n`);
    },
  );

  clientCommand(
    group,
    "verify [key]",
    "Ask the registry whether a key is valid (exit 0) or refused (exit 3, with the reason). Without [key], or with -, reads it from stdin so it stays out of shell history.",
    'printf %s "$KEY" | tenant-registry keys verify --product billing',
  )
    .option("--product <product>", "the product asking")
    .option("--scope <scope>", "a scope the key must hold")
    .action(async (arg: string | undefined, o: ClientOptions & { product?: string; scope?: string }) => {
      const key = !arg || arg === "-" ? (await text(process.stdin)).trim() : arg;
      const answer = await ok(connect(o).POST("/v1/internal/api-keys/verify", { body: { key, product: o.product, scope: o.scope } }));
      o.json ? printJson(answer) : printRecord(answer);
      // A refused key is an answer, not a failure of the command: its own exit code lets scripts tell them apart.
      if (!answer.valid) process.exitCode = 3;
    });
}
