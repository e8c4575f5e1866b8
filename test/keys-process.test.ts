import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openPglite } from "../src/store/pglite.js";
import { newTestToken } from "./helpers/app.js";
import { startServerProcess } from "./helpers/process.js";

describe("API keys in the server process", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tr-keys-"));
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
});
