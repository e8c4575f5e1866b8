import { ok, type RegistryClient } from "@tenant-registry/client";
import { type Command, Option } from "commander";
import { type ClientOptions, clientCommand, connect, naming, positiveInt, UUID } from "./context.js";
import { note, printJson, printRecord, printTable } from "./output.js";

const COLUMNS = ["id", "slug", "name", "plan", "kind", "status", "created_at"];

/** A tenant argument may be its id or its slug, whichever the operator has at hand. */
export async function tenantId(client: RegistryClient, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  const tenant = await naming(ok(client.GET("/v1/tenants/by-slug/{slug}", { params: { path: { slug: ref } } })), `"${ref}"`);
  return tenant.id;
}

const show = (json: boolean | undefined, tenant: object) => (json ? printJson(tenant) : printRecord(tenant));

interface ListOptions extends ClientOptions {
  status?: "pending" | "active" | "cancelled";
  plan?: "starter" | "growth" | "enterprise";
  kind?: "customer" | "internal" | "partner" | "demo";
  q?: string;
  limit?: number;
  cursor?: string;
}

interface UpdateOptions extends ClientOptions {
  plan?: "starter" | "growth" | "enterprise";
  salesOwner?: string;
  erpCustomerId?: string;
  stripeCustomerId?: string;
  trialEndsAt?: string;
  contractStart?: string;
  contractEnd?: string;
}

// An empty value clears a field (PATCH with null).
const orNull = (v: string | undefined) => (v === undefined ? undefined : v === "" ? null : v);

export function tenantsCommands(program: Command): void {
  const tenants = program
    .command("tenants")
    .description("Customers: list, look up, create, change, activate, cancel.")
    .addHelpText("after", '\nExample:\n  tenant-registry tenants create globex "Globex Corp" --plan growth');
  const plans = ["starter", "growth", "enterprise"];

  clientCommand(tenants, "list", "List tenants, newest first.", "tenant-registry tenants list --status active --q acme")
    .addOption(new Option("--status <status>").choices(["pending", "active", "cancelled"]))
    .addOption(new Option("--plan <plan>").choices(plans))
    .addOption(new Option("--kind <kind>").choices(["customer", "internal", "partner", "demo"]))
    .option("--q <text>", "search slug and name")
    .option("--limit <n>", "at most this many (1-200)", positiveInt)
    .option("--cursor <cursor>", "continue from a previous page's next_cursor")
    .action(async (o: ListOptions) => {
      const { status, plan, kind, q, limit, cursor } = o;
      const query = { status, plan, kind, q, limit, cursor };
      const page = await ok(connect(o).GET("/v1/tenants", { params: { query } }));
      if (o.json) return printJson(page);
      printTable(page.tenants, COLUMNS);
      if (page.next_cursor) note(`more: --cursor ${page.next_cursor}`);
    });

  clientCommand(tenants, "get <tenant>", "Show one tenant, by id or slug.", "tenant-registry tenants get acme").action(
    async (ref: string, o: ClientOptions) => {
      const client = connect(o);
      const tenant = await naming(
        UUID.test(ref)
          ? ok(client.GET("/v1/tenants/{id}", { params: { path: { id: ref } } }))
          : ok(client.GET("/v1/tenants/by-slug/{slug}", { params: { path: { slug: ref } } })),
        `"${ref}"`,
      );
      show(o.json, tenant);
    },
  );

  clientCommand(
    tenants,
    "create <slug> <name>",
    "Create a tenant (status pending).",
    'tenant-registry tenants create globex "Globex Corp" --plan growth',
  )
    .addOption(new Option("--plan <plan>").choices(plans))
    .addOption(new Option("--kind <kind>").choices(["customer", "internal", "partner", "demo"]))
    .option("--sales-owner <who>")
    .action(async (slug: string, name: string, o: ListOptions & { salesOwner?: string }) => {
      const body = { slug, name, plan: o.plan, kind: o.kind, sales_owner: o.salesOwner };
      show(o.json, await ok(connect(o).POST("/v1/tenants", { body })));
    });

  clientCommand(
    tenants,
    "update <tenant>",
    'Change a tenant\'s plan, owners and contract fields; an empty value ("") clears a field.',
    "tenant-registry tenants update globex --plan enterprise --contract-end 2027-12-31T00:00:00Z",
  )
    .addOption(new Option("--plan <plan>").choices(plans))
    .option("--sales-owner <who>")
    .option("--erp-customer-id <id>")
    .option("--stripe-customer-id <id>")
    .option("--trial-ends-at <time>", "RFC 3339")
    .option("--contract-start <time>", "RFC 3339")
    .option("--contract-end <time>", "RFC 3339")
    .action(async (ref: string, o: UpdateOptions) => {
      const client = connect(o);
      const body = {
        plan: o.plan,
        sales_owner: orNull(o.salesOwner),
        erp_customer_id: orNull(o.erpCustomerId),
        stripe_customer_id: orNull(o.stripeCustomerId),
        trial_ends_at: orNull(o.trialEndsAt),
        contract_start: orNull(o.contractStart),
        contract_end: orNull(o.contractEnd),
      };
      const id = await tenantId(client, ref);
      show(o.json, await ok(client.PATCH("/v1/tenants/{id}", { params: { path: { id } }, body })));
    });

  for (const [verb, text] of [
    ["activate", "Activate a pending tenant and its requested products."],
    ["cancel", "Cancel a tenant: its products end and its keys stop verifying."],
  ] as const) {
    clientCommand(tenants, `${verb} <tenant>`, text, `tenant-registry tenants ${verb} globex`).action(
      async (ref: string, o: ClientOptions) => {
        const client = connect(o);
        const id = await tenantId(client, ref);
        show(o.json, await ok(client.POST(`/v1/tenants/{id}/${verb}`, { params: { path: { id } } })));
      },
    );
  }
}
