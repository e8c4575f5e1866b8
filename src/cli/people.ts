import { ok, type RegistryClient } from "@tenant-registry/client";
import type { Command } from "commander";
import { type ClientOptions, clientCommand, connect, naming, UsageError, UUID } from "./context.js";
import { printJson, printRecord, printTable } from "./output.js";

/** A person's id, or their email. */
async function personId(client: RegistryClient, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  const { people } = await ok(client.GET("/v1/people"));
  const found = people.find((p) => p.email === ref);
  if (!found) throw new UsageError(`nobody with email "${ref}" has signed in; give their id (tenant-registry people list)`);
  return found.id;
}

/** People who sign in through single sign-on, and their console sessions. */
export function peopleCommands(program: Command): void {
  const people = program
    .command("people")
    .description("People who signed in through single sign-on: list, disable, enable.")
    .addHelpText("after", "\nExample:\n  tenant-registry people disable alice@example.com");

  clientCommand(people, "list", "List everyone who has signed in, most recently seen first.", "tenant-registry people list").action(
    async (o: ClientOptions) => {
      const { people: rows } = await ok(connect(o).GET("/v1/people"));
      o.json ? printJson({ people: rows }) : printTable(rows, ["id", "email", "name", "role", "last_seen_at", "disabled"]);
    },
  );

  for (const action of ["disable", "enable"] as const) {
    clientCommand(
      people,
      `${action} <person>`,
      action === "disable"
        ? "Disable a person (by id or email): their sessions end on every instance within about a second and they cannot sign in."
        : "Enable a disabled person (by id or email): they may sign in again.",
      `tenant-registry people ${action} alice@example.com`,
    ).action(async (ref: string, o: ClientOptions) => {
      const client = connect(o);
      const id = await personId(client, ref);
      const path = action === "disable" ? "/v1/people/{id}/disable" : "/v1/people/{id}/enable";
      const person = await naming(ok(client.POST(path, { params: { path: { id } } })), `person "${ref}"`);
      o.json ? printJson(person) : printRecord(person);
    });
  }

  const sessions = program
    .command("sessions")
    .description("People's live console sessions: list, end.")
    .addHelpText("after", "\nExample:\n  tenant-registry sessions end <id>");

  clientCommand(sessions, "list", "List live sessions, newest first.", "tenant-registry sessions list").action(async (o: ClientOptions) => {
    const { sessions: rows } = await ok(connect(o).GET("/v1/sessions"));
    const flat = rows.map((s) => ({
      id: s.id,
      email: s.person.email,
      started_at: s.started_at,
      last_seen_at: s.last_seen_at,
      expires_at: s.expires_at,
    }));
    o.json ? printJson({ sessions: rows }) : printTable(flat, ["id", "email", "started_at", "last_seen_at", "expires_at"]);
  });

  clientCommand(
    sessions,
    "end <id>",
    "End a session: it stops working on every instance within about a second.",
    "tenant-registry sessions end 3f6c2a90-1111-4d2e-9a37-0c1f5e2b7d10",
  ).action(async (id: string, o: ClientOptions) => {
    if (!UUID.test(id)) throw new UsageError(`"${id}" is not a session id (tenant-registry sessions list)`);
    await naming(ok(connect(o).DELETE("/v1/sessions/{id}", { params: { path: { id } } })), `session ${id}`);
    o.json ? printJson({ ended: id }) : process.stdout.write(`ended ${id}\n`);
  });
}
