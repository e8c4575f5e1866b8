import { ok } from "@tenant-registry/client";
import type { Command } from "commander";
import { type ClientOptions, clientCommand, connect } from "./context.js";
import { printJson, printRecord } from "./output.js";

export function whoamiCommand(program: Command): void {
  clientCommand(program, "whoami", "Show the principal (name, role and kind) the token belongs to.", "tenant-registry whoami").action(
    async (o: ClientOptions) => {
      const me = await ok(connect(o).GET("/v1/me"));
      o.json ? printJson(me) : printRecord(me);
    },
  );
}
