import { readFileSync } from "node:fs";
import { RegistryError } from "@tenant-registry/client";
import { Command, CommanderError } from "commander";
import { newToken } from "../admin-token.js";
import { clientCommands } from "./commands.js";
import { UsageError } from "./context.js";
import { terminalSafe } from "./output.js";
import { humanFieldProblems } from "./problems.js";

/** Report a failure the way the CLI promises: a message, never a stack trace, and exit 0/1/2. */
export function fail(err: unknown): never {
  // commander has printed its message (or the help) already.
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  if (err instanceof UsageError) {
    process.stderr.write(`tenant-registry: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof RegistryError) {
    const { title, detail, errors } = err.problem;
    if (errors && errors.length > 0 && !process.argv.includes("--json")) {
      // People get one line per field in words; scripts asking for --json keep the API's raw entries.
      const lines = humanFieldProblems(errors);
      const what = lines.length === 1 ? "a value is not valid" : `${lines.length} values are not valid`;
      process.stderr.write(`tenant-registry: ${title}: ${what}:${lines.map((line) => `\n  ${terminalSafe(line)}`).join("")}\n`);
      process.exit(1);
    }
    const fields = (errors ?? []).map((e) => `\n  ${e.field}: ${e.message}`).join("");
    process.stderr.write(`tenant-registry: ${title}: ${detail}${fields}\n`);
    process.exit(1);
  }
  // By name: the config module is loaded only by the commands that need it.
  if (err instanceof Error && err.name === "ConfigError") {
    process.stderr.write(`tenant-registry: ${err.message}\n  See .env.example for every setting.\n`);
    process.exit(2);
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`tenant-registry: ${message}\n`);
  process.exit(1);
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/**
 * `serve` is the default command, so commander would hand an unknown word to
 * it ("too many arguments for 'serve'"). Catch that first and suggest.
 */
export function checkCommand(program: Command, argv: readonly string[]): void {
  const word = argv[2];
  if (word === undefined || word.startsWith("-")) return;
  const names = program.commands.flatMap((c) => [c.name(), ...c.aliases()]);
  if (names.includes(word) || word === "help") return;
  const close = names.filter((n) => distance(word, n) <= Math.max(1, Math.floor(n.length / 3)) || n.startsWith(word));
  throw new UsageError(
    `unknown command '${word}'${close.length ? `; did you mean ${close.map((n) => `'${n}'`).join(" or ")}?` : ""}\n` +
      `  Commands: ${program.commands.map((c) => c.name()).join(", ")} (tenant-registry --help)`,
  );
}

const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** The whole command tree; built apart from running it so tests can walk it. */
export function buildCli(): Command {
  const program = new Command("tenant-registry")
    .description("System of record for tenants, entitlements, API keys and audit.")
    .version(VERSION, "-V, --version", "print the version")
    .showHelpAfterError("(add --help for usage and an example)")
    // Usage errors reach fail() as CommanderErrors, to exit 2 rather than commander's 1.
    .exitOverride()
    .addHelpText(
      "after",
      '\nCommands that talk to a running registry take --url (REGISTRY_URL) and --token (REGISTRY_TOKEN).\n\nExample:\n  npm start &\n  tenant-registry tenants create globex "Globex Corp"',
    );

  program
    .command("serve", { isDefault: true })
    .description("Run the HTTP server (settings from the environment, see .env.example).")
    .addHelpText("after", "\nExample:\n  PORT=8080 tenant-registry serve")
    .action(async () => {
      // The server's modules load only for the commands that run it, so client commands start fast.
      const [{ loadConfig }, { createLogger }, { startServer, stopOnSignals }] = await Promise.all([
        import("../config.js"),
        import("../logger.js"),
        import("../server.js"),
      ]);
      const config = loadConfig();
      const log = createLogger(config.logLevel);
      const running = await startServer(config, log);
      stopOnSignals(running, config, log);
    });

  program
    .command("migrate")
    .description("Apply pending database migrations and exit (safe to run from several places at once).")
    .option("--grant <role>", "PostgreSQL: then grant ROLE exactly what the server needs (run as the schema owner)")
    .addHelpText(
      "after",
      "\nRuns as MIGRATION_DATABASE_URL (the schema owner), else DATABASE_URL.\n\nExample:\n" +
        "  MIGRATION_DATABASE_URL=postgres://owner@localhost/registry tenant-registry migrate --grant registry_app",
    )
    .action(async (options: { grant?: string }) => {
      const [{ loadConfig }, { openMigrationStore }, { migrate, databaseMessage }, { grantServerRole }] = await Promise.all([
        import("../config.js"),
        import("../store/index.js"),
        import("../store/migrate.js"),
        import("../store/grants.js"),
      ]);
      const config = loadConfig(process.env, { requireAdminToken: false });
      if (options.grant !== undefined && config.store.engine !== "postgres") {
        throw new UsageError("--grant needs PostgreSQL (DATABASE_URL or MIGRATION_DATABASE_URL set to a postgres:// URL)");
      }
      const db = await openMigrationStore(config, () => {});
      try {
        let applied: string[];
        try {
          applied = await migrate(db);
        } catch (err) {
          throw new Error(`migration failed: ${databaseMessage(err)}`);
        }
        process.stdout.write(applied.length ? `applied: ${applied.join(", ")}\n` : "up to date\n");
        if (options.grant !== undefined) {
          const role = options.grant;
          await db
            .tx((q) => grantServerRole(q, role))
            .catch((err: unknown) => {
              throw new Error(`grant failed: ${databaseMessage(err)}`);
            });
          process.stdout.write(`granted ${role} what the server needs (no DDL; audit_events append-only)\n`);
        }
      } finally {
        await db.close();
      }
    });

  program
    .command("token")
    .description("Print a strong random token for REGISTRY_ADMIN_TOKEN or REGISTRY_TOKENS.")
    .addHelpText("after", "\nExample:\n  export REGISTRY_ADMIN_TOKEN=$(tenant-registry token)")
    .action(() => {
      process.stdout.write(`${newToken()}\n`);
    });

  clientCommands(program);
  return program;
}
