import { rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createRegistryClient, ok, type RegistryClient, registryAuthHook } from "@tenant-registry/client";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newTestToken, uniqueSlug } from "./helpers/app.js";
import { openTestDb, type TestDb } from "./helpers/db.js";
import { migratedDataDir, type ServerProcess, startServerProcess } from "./helpers/process.js";
import { TcpProxy } from "./helpers/tcp-proxy.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A registry process and a product using the verify middleware. The
 * product reaches the change feed through a TCP proxy, so the test can
 * silence the feed alone while verify calls still get through.
 */
describe("push invalidation: a product's cache follows the registry's change feed", () => {
  const dataDir = migratedDataDir("tr-push-");
  const admin = newTestToken();
  const service = newTestToken();
  let server: ServerProcess;
  let registry: RegistryClient;
  let proxy: TcpProxy;
  let product: FastifyInstance;
  let base: string;
  let verifies = 0;
  let store: TestDb | undefined;

  beforeAll(async () => {
    // PostgreSQL when there is one (a registry process starts in a second); else the embedded store.
    store = process.env.TEST_DATABASE_URL ? await openTestDb("postgres") : undefined;
    server = await startServerProcess({
      ...(store?.url ? { DATABASE_URL: store.url } : { DATA_DIR: dataDir }),
      REGISTRY_ADMIN_TOKEN: admin,
      REGISTRY_TOKENS: `shop:service:${service}`,
    });
    registry = createRegistryClient({ url: server.url, token: admin });
    const target = new URL(server.url);
    proxy = new TcpProxy(target.hostname, Number(target.port));
    const proxyPort = await proxy.listen();
    const routed: typeof fetch = (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.includes("/v1/internal/changes")) {
        const u = new URL(url);
        u.port = String(proxyPort);
        return fetch(u, init);
      }
      if (url.includes("/v1/internal/api-keys/verify")) verifies++;
      return fetch(input, init);
    };
    product = Fastify();
    const hook = registryAuthHook({ url: server.url, token: service, product: "billing", fetch: routed });
    product.addHook("onRequest", hook);
    product.addHook("onClose", async () => hook.close());
    product.get("/invoices", async (req) => ({ caller: req.registryAuth }));
    await product.listen({ port: 0, host: "127.0.0.1" });
    base = `http://127.0.0.1:${(product.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await product?.close();
    await proxy?.close();
    await server?.stop();
    await store?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const call = async (key: string) => (await fetch(`${base}/invoices`, { headers: { "x-api-key": key } })).status;
  async function newKey() {
    const tenant = await ok(registry.POST("/v1/tenants", { body: { slug: uniqueSlug("push"), name: "Push" } }));
    await ok(registry.POST("/v1/entitlements", { body: { tenant_id: tenant.id, product: "billing", status: "active" } }));
    return ok(registry.POST("/v1/api-keys", { body: { tenant_id: tenant.id, name: "push" } }));
  }
  /** Milliseconds from now until the product refuses `key`. */
  async function refusedWithin(key: string, limitMs: number): Promise<number> {
    const started = Date.now();
    while (Date.now() - started < limitMs + 2000) {
      if ((await call(key)) === 401) return Date.now() - started;
      await sleep(25);
    }
    return Number.POSITIVE_INFINITY;
  }

  it("while the feed is live: caches past a second, and a revoke reaches the product within 1.5 s", async () => {
    const key = await newKey();
    expect(await call(key.key)).toBe(200);
    // Let the feed connect and beat.
    await sleep(1500);
    const before = verifies;
    for (let i = 0; i < 25; i++) {
      expect(await call(key.key)).toBe(200);
      await sleep(100);
    }
    // 2.5 s of requests answered from the cache: the 1 s fallback would have asked again.
    expect(verifies - before).toBeLessThanOrEqual(1);
    await ok(registry.DELETE("/v1/api-keys/{id}", { params: { path: { id: key.id } } }));
    expect(await refusedWithin(key.key, 1500)).toBeLessThan(1500);
  });

  it("when the feed goes silent: falls back to caching for at most a second", async () => {
    const key = await newKey();
    expect(await call(key.key)).toBe(200);
    proxy.sever("blackhole");
    try {
      // Heartbeats stop; after 2 s the product stops trusting long-cached answers.
      await sleep(2500);
      const before = verifies;
      for (let i = 0; i < 20; i++) {
        expect(await call(key.key)).toBe(200);
        await sleep(100);
      }
      expect(verifies - before).toBeGreaterThanOrEqual(2);
      await ok(registry.DELETE("/v1/api-keys/{id}", { params: { path: { id: key.id } } }));
      expect(await refusedWithin(key.key, 1500)).toBeLessThan(1500);
    } finally {
      proxy.restore();
    }
  });
});
