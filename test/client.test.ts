import { rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import Fastify, { type FastifyInstance } from "fastify";
import {
  createKeyChecker,
  createRegistryClient,
  ok,
  type RegistryAuthLogDetails,
  type RegistryAuthOptions,
  type RegistryAuthRequest,
  type RegistryClient,
  RegistryError,
  type RegistryPrincipal,
  registryAuth,
  registryAuthFetch,
  registryAuthHook,
} from "tenant-registry/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newTestToken, uniqueSlug } from "./helpers/app.js";
import { migratedDataDir, type ServerProcess, startServerProcess } from "./helpers/process.js";

// As a product team using the Fastify hook declares it (the client package does not depend on Fastify).
declare module "fastify" {
  interface FastifyRequest {
    registryAuth?: RegistryPrincipal;
  }
}

describe("the typed client and the verify middleware against a running registry", () => {
  const dataDir = migratedDataDir("tr-client-");
  const admin = newTestToken();
  const service = newTestToken();
  let server: ServerProcess;
  let registry: RegistryClient;
  const products: FastifyInstance[] = [];

  beforeAll(async () => {
    server = await startServerProcess({ DATA_DIR: dataDir, REGISTRY_ADMIN_TOKEN: admin, REGISTRY_TOKENS: `shop:service:${service}` });
    registry = createRegistryClient({ url: server.url, token: admin });
  });
  afterAll(async () => {
    await Promise.all(products.map((p) => p.close()));
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function tenantWith(product?: string) {
    const tenant = await ok(registry.POST("/v1/tenants", { body: { slug: uniqueSlug("cl"), name: "Client test" } }));
    if (product) await ok(registry.POST("/v1/entitlements", { body: { tenant_id: tenant.id, product, status: "active" } }));
    return tenant;
  }
  const newKey = (tenant_id: string, scopes: string[], product?: string) =>
    ok(registry.POST("/v1/api-keys", { body: { tenant_id, name: "test", scopes, ...(product ? { product } : {}) } }));

  /** A product service, as a product team would write it with the Fastify hook. */
  async function fastifyProduct(options: Partial<RegistryAuthOptions> = {}) {
    const app = Fastify();
    // A generous timeout: a first verify runs argon2, which takes seconds on a loaded machine.
    const hook = registryAuthHook({ url: server.url, token: service, product: "billing", scope: "read", timeoutMs: 30_000, ...options });
    app.addHook("onRequest", hook);
    app.addHook("onClose", async () => hook.close());
    app.get("/invoices", async (request) => ({ caller: request.registryAuth }));
    products.push(app);
    await app.listen({ port: 0, host: "127.0.0.1" });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    return async (headers: Record<string, string> = {}) => {
      const res = await fetch(`${base}/invoices`, { headers });
      return { status: res.status, type: res.headers.get("content-type"), res, body: (await res.json()) as Record<string, unknown> };
    };
  }

  it("answers typed data, and problems as a RegistryError carrying the problem", async () => {
    const tenant = await tenantWith();
    const got = await ok(registry.GET("/v1/tenants/{id}", { params: { path: { id: tenant.id } } }));
    expect(got.slug).toBe(tenant.slug);

    const missing = await ok(registry.GET("/v1/tenants/by-slug/{slug}", { params: { path: { slug: "no-such-tenant" } } })).catch((e) => e);
    expect(missing).toBeInstanceOf(RegistryError);
    expect(missing.status).toBe(404);
    expect(missing.problem).toMatchObject({ code: "not_found", title: "Not Found", status: 404 });
    expect(missing.problem.request_id).toEqual(expect.any(String));

    const down = createRegistryClient({ url: "http://127.0.0.1:9", token: admin });
    const unreachable = await ok(down.GET("/v1/catalog")).catch((e) => e);
    expect(unreachable).toBeInstanceOf(RegistryError);
    expect(unreachable.problem).toMatchObject({ code: "unavailable", status: 503 });
  });

  it("the Fastify hook lets good keys in with their tenant, and refuses the rest with the reason", async () => {
    const call = await fastifyProduct({ cacheTtlMs: 0 });
    const tenant = await tenantWith("billing");
    const good = await newKey(tenant.id, ["read"], "billing");

    const bearer = await call({ authorization: `Bearer ${good.key}` });
    expect(bearer.status).toBe(200);
    expect(bearer.body.caller).toEqual({ tenant_id: tenant.id, key_id: good.id, scopes: ["read"] });
    expect((await call({ "x-api-key": good.key })).status).toBe(200);

    const none = await call();
    expect(none).toMatchObject({ status: 401, body: { code: "unauthorized", reason: "missing_key" } });
    expect(none.type).toMatch(/^application\/problem\+json/);
    expect(none.res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect((await call({ authorization: "Bearer bp_short" })).body).toMatchObject({ status: 401, reason: "malformed" });

    const otherProduct = await newKey(tenant.id, ["read"], "identity");
    expect((await call({ "x-api-key": otherProduct.key })).body).toMatchObject({
      status: 403,
      code: "forbidden",
      reason: "product_mismatch",
    });
    const writeOnly = await newKey(tenant.id, ["write"]);
    expect((await call({ "x-api-key": writeOnly.key })).body).toMatchObject({ status: 403, reason: "insufficient_scope" });
    const unentitled = await newKey((await tenantWith()).id, ["read"]);
    expect((await call({ "x-api-key": unentitled.key })).body).toMatchObject({ status: 403, reason: "not_entitled" });

    await ok(registry.DELETE("/v1/api-keys/{id}", { params: { path: { id: good.id } } }));
    expect((await call({ "x-api-key": good.key })).body).toMatchObject({ status: 401, reason: "revoked" });
  });

  it("reuses a positive answer for at most cacheTtlMs: the documented staleness bound", async () => {
    let verifies = 0;
    const counting: typeof fetch = (input, init) => {
      verifies++;
      return fetch(input, init);
    };
    // Without the change feed, the TTL alone bounds staleness (test/client-push.test.ts covers the feed).
    const call = await fastifyProduct({ cacheTtlMs: 1500, changes: false, fetch: counting });
    const tenant = await tenantWith("billing");
    const key = await newKey(tenant.id, ["read"]);

    // Concurrent first requests share one verify; later ones come from the cache.
    const first = await Promise.all(Array.from({ length: 5 }, () => call({ "x-api-key": key.key })));
    expect(first.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    for (let i = 0; i < 3; i++) expect((await call({ "x-api-key": key.key })).status).toBe(200);
    expect(verifies).toBe(1);
    // Refusals are never cached: each one asks the registry again.
    await call({ "x-api-key": "bp_AAAAAAAAAAAAAAAAAAAAAA" });
    await call({ "x-api-key": "bp_AAAAAAAAAAAAAAAAAAAAAA" });
    expect(verifies).toBe(3);

    await ok(registry.DELETE("/v1/api-keys/{id}", { params: { path: { id: key.id } } }));
    expect((await call({ "x-api-key": key.key })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1600));
    expect((await call({ "x-api-key": key.key })).body).toMatchObject({ status: 401, reason: "revoked" });
  });

  it("the Express-style form protects a plain node:http service", async () => {
    const auth = registryAuth({ url: server.url, token: service, product: "billing", timeoutMs: 30_000 });
    const product: Server = createServer((req: RegistryAuthRequest, res) =>
      auth(req, res, (err) => {
        if (err) return void res.writeHead(500).end();
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(req.registryAuth));
      }),
    );
    await new Promise<void>((r) => product.listen(0, "127.0.0.1", r));
    try {
      const base = `http://127.0.0.1:${(product.address() as AddressInfo).port}`;
      const tenant = await tenantWith("billing");
      const key = await newKey(tenant.id, []);
      const res = await fetch(base, { headers: { authorization: `Bearer ${key.key}` } });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ tenant_id: tenant.id, key_id: key.id, scopes: [] });

      const refused = await fetch(base, { headers: { "x-api-key": "bp_AAAAAAAAAAAAAAAAAAAAAA" } });
      expect(refused.status).toBe(401);
      expect(refused.headers.get("content-type")).toBe("application/problem+json");
      expect(await refused.json()).toMatchObject({
        code: "unauthorized",
        reason: "not_found",
        detail: expect.stringContaining("not_found"),
      });
    } finally {
      await new Promise((r) => product.close(r));
    }
  });

  it("fails closed with 503 when the registry cannot answer, telling the product's log and not its callers why", async () => {
    const tenant = await tenantWith("billing");
    const key = await newKey(tenant.id, ["read"]);
    const logged: { message: string; details: RegistryAuthLogDetails }[] = [];
    const logger = (message: string, details: RegistryAuthLogDetails) => void logged.push({ message, details });
    const down = await fastifyProduct({ url: "http://127.0.0.1:9", logger });
    const res = await down({ "x-api-key": key.key });
    expect(res).toMatchObject({
      status: 503,
      body: { code: "unavailable", reason: "registry_unavailable", request_id: expect.any(String) },
    });
    expect(res.res.headers.get("retry-after")).toBe("1");
    // Neither the registry's address nor the network's error reaches the caller: they are in the log, under the same request id.
    const text = JSON.stringify(res.body);
    for (const secret of ["127.0.0.1", ":9", "ECONNREFUSED", "fetch failed", "unreachable"]) expect(text).not.toContain(secret);
    expect(logged).toHaveLength(1);
    expect(logged[0]?.details).toMatchObject({
      request_id: res.body.request_id,
      reason: "registry_unavailable",
      registry: "http://127.0.0.1:9",
    });
    expect(logged[0]?.details.error).toContain("Registry unreachable");

    // A product misconfigured with a token the registry refuses lets nobody in either, and says why:
    // that is the product's configuration, not an outage. The registry's own words go to the log.
    const wrongToken = await fastifyProduct({ token: newTestToken(), logger });
    const refused = await wrongToken({ "x-api-key": key.key });
    expect(refused).toMatchObject({
      status: 500,
      body: { code: "internal", reason: "registry_token_refused", request_id: expect.any(String) },
    });
    expect(JSON.stringify(refused.body)).not.toContain(server.url);
    const entry = logged.find((l) => l.details.request_id === refused.body.request_id);
    expect(entry?.details).toMatchObject({ reason: "registry_token_refused", status: 401, registry: server.url });
    expect(entry?.details.error).toContain("Unauthorized");
    expect(refused.body.detail).not.toContain(entry?.details.error);
  });
});

describe("the verify middleware's options", () => {
  const complete = { url: "http://127.0.0.1:9", token: "t", product: "billing" };
  const builders = { registryAuth, registryAuthHook, registryAuthFetch, createKeyChecker };

  it.each(Object.entries(builders))("%s refuses to be built without url, token or product, naming the option", (_name, build) => {
    for (const option of ["url", "token", "product"] as const) {
      const { [option]: _, ...rest } = complete;
      expect(() => build(rest as RegistryAuthOptions)).toThrow(new RegExp(`option \`${option}\` is required`));
      expect(() => build({ ...complete, [option]: "" })).toThrow(new RegExp(`option \`${option}\``));
    }
    expect(() => build({ ...complete, url: "registry" })).toThrow(/option `url` is not a URL/);
    // Built with all three, nothing is contacted until the first request.
    const built = build(complete);
    built.close();
  });
});
