import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildCli } from "../src/cli/program.js";

const everyCommand = (c: Command): Command[] => [c, ...c.commands.flatMap(everyCommand)];

function helpOf(c: Command): string {
  let text = "";
  c.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  c.outputHelp();
  return text;
}

describe("CLI help", () => {
  const program = buildCli();

  it("offers every command the issue lists", () => {
    const names = everyCommand(program).map((c) => [c.parent?.parent ? c.parent.name() : "", c.name()].filter(Boolean).join(" "));
    for (const name of [
      "serve",
      "migrate",
      "token",
      ...["list", "get", "create", "update", "activate", "cancel"].map((v) => `tenants ${v}`),
      ...["list", "grant", "revoke"].map((v) => `entitlements ${v}`),
      ...["list", "request", "trial"].map((v) => `catalog ${v}`),
      ...["create", "list", "revoke", "verify"].map((v) => `keys ${v}`),
      ...["create", "list", "revoke", "rotate"].map((v) => `tokens ${v}`),
      ...["list", "tail", "export"].map((v) => `audit ${v}`),
      ...["list", "create", "delete", "rotate", "deliveries", "retry", "test"].map((v) => `webhooks ${v}`),
    ]) {
      expect(names, name).toContain(name);
    }
  });

  it("every command's --help shows an example", () => {
    for (const c of everyCommand(program)) {
      expect(helpOf(c), c.name()).toMatch(/\nExample:\n {2}\S/);
    }
  });
});
