import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import pg from "pg";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** A database of the benchmark's own next to the admin URL's, dropped afterwards. */
export async function createDatabase(adminUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `tr_bench_audit_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    drop: async () => {
      if (dropped) return;
      dropped = true;
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export const PRODUCTS = Array.from({ length: 8 }, (_, i) => `prod-${i}`);
export const ACTORS = 2000;
export const ACTIONS = 40;

/** Products and tenants, then `rows` historical events over the last 30 days, as a restore would load them. */
export async function loadHistory(pool: pg.Pool, tenants: number, rows: number): Promise<string[]> {
  await pool.query("INSERT INTO products (key, name) SELECT unnest($1::text[]), 'Bench product'", [PRODUCTS]);
  const ids = (
    await pool.query<{ id: string }>(
      "INSERT INTO tenants (slug, name) SELECT 'bench-' || g, 'Bench tenant ' || g FROM generate_series(1, $1) g RETURNING id",
      [tenants],
    )
  ).rows.map((r) => r.id);
  const client = await pool.connect();
  try {
    // Triggers off (a restore keeps its ids and times). Skewed like real
    // traffic: a few big tenants, products and actors; rare actions.
    await client.query("SET session_replication_role = replica");
    await client.query(
      `INSERT INTO audit_events (id, tenant_id, product, actor_id, action, target_type, target_id, metadata, occurred_at, created_at)
       SELECT nextval('audit_events_id_seq'),
              CASE WHEN r1 < 0.05 THEN NULL ELSE t.ids[1 + floor(cardinality(t.ids) * r2 * r2)::int] END,
              CASE WHEN r3 < 0.2 THEN NULL ELSE ($3::text[])[1 + floor(8 * r3 * r3)::int] END,
              'user-' || floor(${ACTORS} * r4 * r4)::int || '@example.com',
              'action.' || floor(${ACTIONS} * r5 * r5 * r5 * r5)::int,
              'thing', 'thing-' || g,
              jsonb_build_object('n', g, 'ip', '10.0.' || (g % 250) || '.' || (g % 199)),
              ts - interval '1 second', ts
         FROM (SELECT $1::uuid[] AS ids) t,
              LATERAL (SELECT g, random() r1, random() r2, random() r3, random() r4, random() r5,
                              date_trunc('milliseconds', now() - interval '30 days' + (g::float8 / $2) * interval '30 days' - interval '1 minute') ts
                         FROM generate_series(1, $2) g) s`,
      [ids, rows, PRODUCTS],
    );
    await client.query("SET session_replication_role = origin");
    await client.query("VACUUM ANALYZE audit_events");
  } finally {
    client.release();
  }
  return ids;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface Server {
  url: string;
  stop(): Promise<void>;
}

/** `tenant-registry serve` in its own process, on a free loopback port. Request logs off (LOG_LEVEL=warn). */
export async function startServer(env: Record<string, string>): Promise<Server> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "serve"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited: ${stderr}`);
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`server did not become ready: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
