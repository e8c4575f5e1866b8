import { ok } from "@tenant-registry/client";
import type { Command } from "commander";
import { type ClientOptions, clientCommand, connect, naming } from "./context.js";
import { printJson, printRecord, printTable } from "./output.js";
import { tenantId } from "./tenants.js";

const COLUMNS = ["product", "status", "trial_ends_at", "updated_at"];

export function entitlementsCommands(program: Command): void {
  const group = program
    .command("entitlements")
    .description("Which products a tenant may use: list, grant, revoke.")
    .addHelpText("after", "\nExample:\n  tenant-registry entitlements grant acme billing");

  clientCommand(group, "list <tenant>", "List a tenant's products and their status.", "tenant-registry entitlements list acme").action(
    async (ref: string, o: ClientOptions) => {
      const client = connect(o);
      const tenant_id = await tenantId(client, ref);
      const { entitlements } = await ok(client.GET("/v1/entitlements", { params: { query: { tenant_id } } }));
      o.json ? printJson({ entitlements }) : printTable(entitlements, COLUMNS);
    },
  );

  for (const [verb, status, text] of [
    ["grant", "active", "Make a product active for a tenant."],
    ["revoke", "cancelled", "End a tenant's use of a product."],
  ] as const) {
    clientCommand(group, `${verb} <tenant> <product>`, text, `tenant-registry entitlements ${verb} acme billing`).action(
      async (ref: string, product: string, o: ClientOptions) => {
        const client = connect(o);
        const tenant_id = await tenantId(client, ref);
        const entitlement = await naming(
          ok(client.POST("/v1/entitlements", { body: { tenant_id, product, status } })),
          `"${product}" (tenant "${ref}")`,
        );
        o.json ? printJson(entitlement) : printRecord(entitlement);
      },
    );
  }
}
