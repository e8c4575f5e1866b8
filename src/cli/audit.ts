import { createWriteStream } from "node:fs";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { type AuditEvent, ok, type RegistryClient, RegistryError } from "@tenant-registry/client";
import { type Command, InvalidArgumentError, Option } from "commander";
import { stringify } from "csv-stringify";
import { followStream } from "./audit-follow.js";
import { auditVerifyCommand, exportLeaves } from "./audit-log.js";
import { type ClientOptions, clientCommand, connect, positiveInt, UsageError } from "./context.js";
import { note, printJson, printTable, terminalSafe } from "./output.js";
import { tenantId } from "./tenants.js";

interface FilterOptions extends ClientOptions {
  tenant?: string;
  product?: string;
  actorId?: string;
  action?: string;
  since?: string;
  until?: string;
  limit?: number;
}

const COLUMNS = [
  "id",
  "created_at",
  "action",
  "actor_id",
  "tenant_id",
  "product",
  "target_type",
  "target_id",
  "metadata",
  "occurred_at",
] as const;

/** An RFC 3339 time, or a span back from now (`30s`, `15m`, `2h`, `7d`). */
export function timeArg(value: string): string {
  const span = /^(\d+)([smhd])$/.exec(value);
  if (span) {
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[span[2] as "s" | "m" | "h" | "d"];
    return new Date(Date.now() - Number(span[1]) * unit).toISOString();
  }
  if (Number.isNaN(Date.parse(value))) throw new InvalidArgumentError("use an RFC 3339 time or a span such as 15m, 2h, 7d.");
  return value;
}

function withFilters(cmd: Command, sinceDefault = ""): Command {
  return cmd
    .option("--tenant <tenant>", "only this tenant (id or slug)")
    .option("--product <product>", "only this product")
    .option("--actor-id <actor>", "only events by this actor")
    .option("--action <action>", "only this action, e.g. api_key.revoked")
    .option("--since <time>", `from this creation time, inclusive (RFC 3339, or 15m, 2h, 7d back)${sinceDefault}`, timeArg)
    .option("--until <time>", "before this creation time, exclusive", timeArg);
}

async function query(client: RegistryClient, o: FilterOptions) {
  const tenant_id = o.tenant ? await tenantId(client, o.tenant) : undefined;
  return { tenant_id, product: o.product, actor_id: o.actorId, action: o.action, since: o.since, until: o.until, limit: o.limit };
}

/** Every event matching the query, page after page, until the registry has no more now. */
async function* allEvents(client: RegistryClient, q: Awaited<ReturnType<typeof query>>): AsyncGenerator<AuditEvent> {
  let cursor: string | undefined;
  for (;;) {
    const page = await ok(client.GET("/v1/audit", { params: { query: { ...q, cursor } } }));
    yield* page.events;
    if (!page.next_cursor) return;
    cursor = page.next_cursor;
  }
}

/**
 * `audit tail` prints as events arrive, so its columns have fixed widths
 * (wide enough for ids, UUIDs and the registry's own actions) rather than
 * widths measured over a table; a longer value pushes only its own line.
 */
const TAIL_COLUMNS: [title: string, width: number][] = [
  ["CREATED_AT", 24],
  ["ID", 8],
  ["ACTION", 26],
  ["ACTOR", 16],
  ["TENANT", 36],
  ["PRODUCT", 12],
  ["TARGET", 0],
];
const tailRow = (values: string[]) =>
  values
    .map((v, i) => (i === 1 ? v.padStart(TAIL_COLUMNS[i]?.[1] ?? 0) : v.padEnd(TAIL_COLUMNS[i]?.[1] ?? 0)))
    .join("  ")
    .trimEnd();
const TAIL_HEADER = tailRow(TAIL_COLUMNS.map(([title]) => title));
const line = (e: AuditEvent) =>
  tailRow(
    [
      e.created_at,
      e.id,
      e.action,
      e.actor_id,
      e.tenant_id ?? "-",
      e.product ?? "-",
      e.target_type ? `${e.target_type}/${e.target_id ?? "-"}` : "-",
    ].map(terminalSafe),
  );

/**
 * Follow the log: poll with the last non-null cursor, which brings the last
 * page back, and print only ids not printed since that cursor, so no event is
 * shown twice or skipped.
 */
async function tail(client: RegistryClient, q: Awaited<ReturnType<typeof query>>, follow: boolean, intervalMs: number, json: boolean) {
  let cursor: string | undefined;
  let seen = new Set<string>();
  let last: string | undefined;
  let streamable = true;
  if (!json) process.stdout.write(`${TAIL_HEADER}\n`);
  for (;;) {
    let page: { events: AuditEvent[]; next_cursor: string | null };
    try {
      page = await ok(client.GET("/v1/audit", { params: { query: { ...q, cursor } } }));
    } catch (err) {
      // A tail outlives a registry restart; anything else (a bad filter, a refused token) ends it.
      if (!follow || !(err instanceof RegistryError) || err.code !== "unavailable") throw err;
      note(`tenant-registry: ${err.problem.title}: ${err.problem.detail} (retrying)`);
      await sleep(intervalMs);
      continue;
    }
    for (const e of page.events) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      last = e.id;
      process.stdout.write(`${json ? JSON.stringify(e) : line(e)}\n`);
    }
    if (page.next_cursor) {
      // Nothing before this cursor comes back, so the ids seen so far can be forgotten.
      cursor = page.next_cursor;
      seen = new Set();
      continue;
    }
    if (!follow) return;
    // Caught up: from the last event printed on, the registry's stream pushes new ones as they commit.
    if (streamable && last !== undefined && !q.until) {
      const { tenant_id, product, actor_id, action } = q;
      const print = (e: AuditEvent) => process.stdout.write(`${json ? JSON.stringify(e) : line(e)}\n`);
      streamable = await followStream(client, { tenant_id, product, actor_id, action }, last, intervalMs, print);
    }
    await sleep(intervalMs);
  }
}

async function exportEvents(events: AsyncIterable<AuditEvent>, format: "ndjson" | "csv", output: Writable) {
  let count = 0;
  const progress = process.stderr.isTTY
    ? (done = false) => process.stderr.write(`\rexported ${count} events${done ? "\n" : ""}`)
    : () => {};
  async function* counted() {
    for await (const e of events) {
      count++;
      if (count % 1000 === 0) progress();
      yield format === "csv" ? { ...e, metadata: JSON.stringify(e.metadata) } : `${JSON.stringify(e)}\n`;
    }
  }
  const source = Readable.from(counted(), { objectMode: true });
  try {
    if (format === "csv") await pipeline(source, stringify({ header: true, columns: [...COLUMNS], escape_formulas: true }), output);
    else await pipeline(source, output);
  } catch (err) {
    // The reader went away (`| head`): that ends an export, it does not fail it.
    if ((err as NodeJS.ErrnoException).code !== "EPIPE") throw err;
  }
  progress(true);
  return count;
}

export function auditCommands(program: Command): void {
  const group = program
    .command("audit")
    .description("Read the audit trail: one page, a live tail, or a full export.")
    .addHelpText("after", "\nExample:\n  tenant-registry audit tail --tenant acme --follow");

  withFilters(clientCommand(group, "list", "Show one page of events, oldest first.", "tenant-registry audit list --tenant acme --since 2h"))
    .option("--limit <n>", "at most this many (1-1000, default 100)", positiveInt)
    .option("--cursor <cursor>", "continue from a previous page's next_cursor")
    .action(async (o: FilterOptions & { cursor?: string }) => {
      const client = connect(o);
      const page = await ok(client.GET("/v1/audit", { params: { query: { ...(await query(client, o)), cursor: o.cursor } } }));
      if (o.json) return printJson(page);
      printTable(page.events, ["id", "created_at", "action", "actor_id", "tenant_id", "product", "target_type", "target_id"]);
      if (page.next_cursor) note(`more: --cursor ${page.next_cursor}`);
    });

  withFilters(
    clientCommand(
      group,
      "tail",
      "Print recent events, one per line (--json: NDJSON); with --follow keep printing new ones as they are written.",
      "tenant-registry audit tail --since 15m --follow",
    ),
    " (default: 1h)",
  )
    .option("-f, --follow", "keep polling for new events until interrupted")
    .option("--interval <ms>", "time between polls when following", positiveInt, 2000)
    .option("--limit <n>", "page size (1-1000)", positiveInt)
    .action(async (o: FilterOptions & { follow?: boolean; interval: number }) => {
      const client = connect(o);
      // commander does not pass defaults through the parser, and "an hour ago" must be computed now anyway.
      o.since ??= timeArg("1h");
      await tail(client, await query(client, o), o.follow === true, o.interval, o.json === true);
    });

  withFilters(
    clientCommand(
      group,
      "export",
      "Write every matching event as NDJSON or CSV, to stdout or a file; a progress line goes to stderr when it is a terminal.",
      "tenant-registry audit export --since 2026-01-01T00:00:00Z --format csv --output audit.csv",
    ),
  )
    .addOption(
      new Option(
        "--format <format>",
        "output format; leaves: the verifiable log's entries 0 … N−1 of the newest checkpoint, byte for byte (no filters)",
      )
        .choices(["ndjson", "csv", "leaves"])
        .default("ndjson"),
    )
    .option("--output <file>", "write here instead of stdout")
    .option("--limit <n>", "page size (1-1000)", positiveInt, 1000)
    .action(async (o: FilterOptions & { format: "ndjson" | "csv" | "leaves"; output?: string }) => {
      if (o.format === "leaves") {
        const filters = (["tenant", "product", "actorId", "action", "since", "until"] as const).filter((f) => o[f] !== undefined);
        if (filters.length > 0)
          throw new UsageError("--format leaves exports the whole log: filters are refused (it must verify on its own)");
        const output = o.output ? createWriteStream(o.output) : process.stdout;
        const count = await exportLeaves(o, output);
        if (o.output)
          await new Promise<void>((resolve, reject) =>
            (output as ReturnType<typeof createWriteStream>).end((err?: Error | null) => (err ? reject(err) : resolve())),
          );
        if (o.output && !o.json) note(`wrote ${count} entries to ${o.output}`);
        return;
      }
      const client = connect(o);
      const events = allEvents(client, await query(client, o));
      const output = o.output ? createWriteStream(o.output) : process.stdout;
      const count = await exportEvents(events, o.format, output);
      if (o.output && !o.json) note(`wrote ${count} events to ${o.output}`);
    });

  auditVerifyCommand(group);
}
