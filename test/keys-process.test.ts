import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { openPglite } from "../src/store/pglite.js";
import { newTestToken } from "./helpers/app.js";
import { COMPILED_CLI } from "./helpers/compiled.js";
import { migratedDataDir, startServerProcess } from "./helpers/process.js";

describe("API keys in the server process", () => {
  const dataDir = migratedDataDir("tr-keys-");
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("SIGTERM writes pending last_used_at before the store closes", async () => {
    const admin = newTestToken();
    const service = newTestToken();
    const server = await startServerProcess({ DATA_DIR: dataDir, REGISTRY_ADMIN_TOKEN: admin, REGISTRY_TOKENS: `p:service:${service}` });
    const post = async (token: string, path: string, body: unknown) => {
      const res = await fetch(`${server.url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const tenant = await post(admin, "/v1/tenants", { slug: "keyed", name: "Keyed" });
    const key = await post(admin, "/v1/api-keys", { tenant_id: tenant.body.id, name: "k" });
    expect(key.status).toBe(201);
    const verified = await post(service, "/v1/internal/api-keys/verify", { key: key.body.key });
    expect(verified.body.valid).toBe(true);
    // The periodic flush is seconds away: only the shutdown flush can have written it.
    expect(await server.stop("SIGTERM")).toBe(0);
    expect(server.stdout()).not.toContain(String(key.body.key).slice(11));

    const db = await openPglite({ dataDir });
    try {
      const rows = await db.query<{ last_used_at: Date | null }>("SELECT last_used_at FROM api_keys WHERE id = $1", [key.body.id]);
      expect(rows[0]?.last_used_at).toBeInstanceOf(Date);
    } finally {
      await db.close();
    }
  }, 60_000);

  // The compiled layout (test/helpers/compiled.ts, as dist/ is laid out); .ci/run does the same with dist/ after `npm run build`.
  it("hashes keys when started from another directory (the worker threads load the compiled worker)", async () => {
    const admin = newTestToken();
    const child = spawn(process.execPath, [COMPILED_CLI, "serve"], {
      cwd: dataDir,
      env: { PATH: process.env.PATH ?? "", DATABASE_URL: "memory:", PORT: "0", REGISTRY_ADMIN_TOKEN: admin },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      let out = "";
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`did not start: ${out}`)), 30_000);
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /"url":"(http:\/\/[^"]+)".*"msg":"tenant-registry ready"/.exec(out);
          if (m?.[1]) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
        void exited.then((code) => reject(new Error(`exited with ${code}: ${out}`)));
      });
      const headers = { authorization: `Bearer ${admin}`, "content-type": "application/json" };
      const tenant = (await (
        await fetch(`${url}/v1/tenants`, { method: "POST", headers, body: JSON.stringify({ slug: "elsewhere", name: "E" }) })
      ).json()) as {
        id: string;
      };
      const created = await fetch(`${url}/v1/api-keys`, {
        method: "POST",
        headers,
        body: JSON.stringify({ tenant_id: tenant.id, name: "k" }),
      });
      expect(created.status).toBe(201);
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
  }, 60_000);
});
