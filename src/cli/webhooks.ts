import { ok } from "@tenant-registry/client";
import type { Command } from "commander";
import { type ClientOptions, clientCommand, connect, positiveInt } from "./context.js";
import { note, printJson, printRecord, printTable } from "./output.js";

const COLUMNS = ["id", "url", "events", "enabled", "description", "created_at"];
const DELIVERY_COLUMNS = ["id", "event_id", "event_type", "status", "attempts", "last_status_code", "last_error", "next_attempt_at"];
const STATUSES = ["pending", "succeeded", "failed", "dead"] as const;

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function webhooksCommands(program: Command): void {
  const group = program
    .command("webhooks")
    .description("Webhook endpoints that receive audit events, signed as Standard Webhooks: create, list, rotate, test, deliveries.")
    .addHelpText(
      "after",
      '\nExample:\n  tenant-registry webhooks create https://crm.example.com/hooks --event "tenant.*" --event api_key.revoked',
    );

  clientCommand(group, "list", "List the webhook endpoints, newest first.", "tenant-registry webhooks list").action(
    async (o: ClientOptions) => {
      const page = await ok(connect(o).GET("/v1/webhooks"));
      o.json ? printJson(page) : printTable(page.webhooks, COLUMNS);
    },
  );

  clientCommand(
    group,
    "create <url>",
    "Add an endpoint; its signing secret is printed once and never again.",
    'tenant-registry webhooks create https://crm.example.com/hooks --event "tenant.*"',
  )
    .requiredOption("--event <pattern>", "an action, a prefix wildcard (entitlement.*) or * (repeat for more)", collect)
    .option("--description <text>", "what it is for")
    .option("--disabled", "create it disabled")
    .action(async (url: string, o: ClientOptions & { event: string[]; description?: string; disabled?: boolean }) => {
      const body = { url, events: o.event, description: o.description, enabled: o.disabled ? false : undefined };
      const created = await ok(connect(o).POST("/v1/webhooks", { body }));
      if (o.json) return printJson(created);
      printRecord(created);
      note("Keep the secret now: receivers verify signatures with it, and it is not shown again.");
    });

  clientCommand(
    group,
    "delete <id>",
    "Delete an endpoint and drop its pending deliveries.",
    "tenant-registry webhooks delete 2f1c…",
  ).action(async (id: string, o: ClientOptions) => {
    await ok(connect(o).DELETE("/v1/webhooks/{id}", { params: { path: { id } } }));
    o.json ? printJson({ deleted: id }) : process.stdout.write(`deleted ${id}\n`);
  });

  clientCommand(
    group,
    "rotate <id>",
    "Issue a new signing secret; the old one keeps signing alongside it for 24 h.",
    "tenant-registry webhooks rotate 2f1c…",
  ).action(async (id: string, o: ClientOptions) => {
    const rotated = await ok(connect(o).POST("/v1/webhooks/{id}/rotate-secret", { params: { path: { id } } }));
    if (o.json) return printJson(rotated);
    printRecord(rotated);
    note("Give the new secret to the receiver before the old one expires.");
  });

  clientCommand(group, "test <id>", "Send a webhook.test message to this endpoint only.", "tenant-registry webhooks test 2f1c…").action(
    async (id: string, o: ClientOptions) => {
      const accepted = await ok(connect(o).POST("/v1/webhooks/{id}/test", { params: { path: { id } } }));
      o.json ? printJson(accepted) : printRecord(accepted);
    },
  );

  clientCommand(
    group,
    "deliveries <id>",
    "An endpoint's deliveries, newest first.",
    "tenant-registry webhooks deliveries 2f1c… --status failed",
  )
    .option("--status <status>", `only this state (${STATUSES.join(", ")})`)
    .option("--limit <n>", "at most this many (1-200)", positiveInt)
    .option("--cursor <cursor>", "continue from a previous page's next_cursor")
    .action(async (id: string, o: ClientOptions & { status?: (typeof STATUSES)[number]; limit?: number; cursor?: string }) => {
      const query = { status: o.status, limit: o.limit, cursor: o.cursor };
      const page = await ok(connect(o).GET("/v1/webhooks/{id}/deliveries", { params: { path: { id }, query } }));
      if (o.json) return printJson(page);
      printTable(page.deliveries, DELIVERY_COLUMNS);
      if (page.next_cursor) note(`more: --cursor ${page.next_cursor}`);
    });

  clientCommand(
    group,
    "retry <id> <delivery-id>",
    "Attempt a delivery again now (the same webhook-id), whatever its state.",
    "tenant-registry webhooks retry 2f1c… 9d0e…",
  ).action(async (id: string, deliveryId: string, o: ClientOptions) => {
    const accepted = await ok(
      connect(o).POST("/v1/webhooks/{id}/deliveries/{delivery_id}/retry", { params: { path: { id, delivery_id: deliveryId } } }),
    );
    o.json ? printJson(accepted) : printRecord(accepted);
  });
}
