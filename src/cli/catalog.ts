import { ok } from "@tenant-registry/client";
import type { Command } from "commander";
import { type ClientOptions, clientCommand, connect } from "./context.js";
import { printJson, printRecord, printTable } from "./output.js";
import { tenantId } from "./tenants.js";

export function catalogCommands(program: Command): void {
  const group = program
    .command("catalog")
    .description("The products on offer; request one or start a trial for a tenant.")
    .addHelpText("after", "\nExample:\n  tenant-registry catalog trial acme analytics");

  clientCommand(group, "list", "List the products in the catalog.", "tenant-registry catalog list").action(async (o: ClientOptions) => {
    const { products } = await ok(connect(o).GET("/v1/catalog"));
    o.json ? printJson({ products }) : printTable(products, ["key", "name", "trial_days", "description"]);
  });

  for (const [verb, path, text] of [
    ["request", "/v1/catalog/request", "Request a product for a tenant (active once the tenant is activated)."],
    ["trial", "/v1/catalog/trial-request", "Start a tenant's trial of a product (once per tenant and product)."],
  ] as const) {
    clientCommand(group, `${verb} <tenant> <product>`, text, `tenant-registry catalog ${verb} acme analytics`).action(
      async (ref: string, product: string, o: ClientOptions) => {
        const client = connect(o);
        const tenant_id = await tenantId(client, ref);
        const entitlement = await ok(client.POST(path, { body: { tenant_id, product } }));
        o.json ? printJson(entitlement) : printRecord(entitlement);
      },
    );
  }
}
