import type { Command } from "commander";
import { auditCommands } from "./audit.js";
import { catalogCommands } from "./catalog.js";
import { entitlementsCommands } from "./entitlements.js";
import { keysCommands } from "./keys.js";
import { tenantsCommands } from "./tenants.js";
import { tokensCommands } from "./tokens.js";
import { webhooksCommands } from "./webhooks.js";
import { whoamiCommand } from "./whoami.js";

/** The commands that talk to a running registry, one module per resource group. */
export function clientCommands(program: Command): void {
  tenantsCommands(program);
  entitlementsCommands(program);
  catalogCommands(program);
  keysCommands(program);
  tokensCommands(program);
  auditCommands(program);
  webhooksCommands(program);
  whoamiCommand(program);
}
