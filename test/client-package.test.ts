import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newTestToken, uniqueSlug } from "./helpers/app.js";
import { migratedDataDir, type ServerProcess, startServerProcess } from "./helpers/process.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../", import.meta.url));

// A product service as a team without TypeScript writes it: plain ESM JavaScript, node:http,
// @tenant-registry/client installed from its packed tarball. /good holds a service token the
// registry knows, /bad one it does not; /fetch uses registryAuthFetch with Request objects.
const PRODUCT_JS = `
import { createServer } from "node:http";
import { registryAuth, registryAuthFetch } from "@tenant-registry/client";

const url = process.env.REGISTRY_URL;
// A generous timeout: a first verify runs argon2, which takes seconds on a loaded machine.
const timeoutMs = 30000;
const good = registryAuth({ url, token: process.env.GOOD_TOKEN, product: "billing", timeoutMs });
const bad = registryAuth({ url, token: process.env.BAD_TOKEN, product: "billing", timeoutMs });
const viaFetch = registryAuthFetch({ url, token: process.env.GOOD_TOKEN, product: "billing", timeoutMs });

const server = createServer(async (req, res) => {
  if (req.url === "/fetch") {
    const request = new Request("http://product.local/fetch", { headers: { authorization: req.headers.authorization ?? "" } });
    const result = await viaFetch(request);
    if ("response" in result) {
      res.writeHead(result.response.status, { "content-type": result.response.headers.get("content-type") });
      res.end(await result.response.text());
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(result.principal));
    return;
  }
  const auth = req.url === "/bad" ? bad : good;
  auth(req, res, () => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(req.registryAuth)));
});
server.listen(0, "127.0.0.1", () => process.stdout.write(\`listening \${server.address().port}\\n\`));
`;

describe("@tenant-registry/client, packed and installed into a plain JavaScript project", () => {
  const scratch = mkdtempSync(join(tmpdir(), "tr-client-pkg-"));
  const dataDir = migratedDataDir("tr-client-pkg-data-");
  const admin = newTestToken();
  const service = newTestToken();
  let registry: ServerProcess;
  let product: ReturnType<typeof spawn> | undefined;
  let productUrl = "";
  let key = "";

  beforeAll(async () => {
    registry = await startServerProcess({ DATA_DIR: dataDir, REGISTRY_ADMIN_TOKEN: admin, REGISTRY_TOKENS: `shop:service:${service}` });
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${registry.url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(res.status, `${path}: ${await res.clone().text()}`).toBeLessThan(300);
      return (await res.json()) as Record<string, string>;
    };
    const tenant = await post("/v1/tenants", { slug: uniqueSlug("pkg"), name: "Packed client" });
    await post("/v1/entitlements", { tenant_id: tenant.id, product: "billing", status: "active" });
    key = (await post("/v1/api-keys", { tenant_id: tenant.id, name: "packed" })).key ?? "";

    // npm pack runs the package's prepack (tsc), so the tarball holds freshly compiled JavaScript.
    const packed = await run("npm", ["pack", "-w", "@tenant-registry/client", "--pack-destination", scratch, "--json"], { cwd: ROOT });
    const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
    writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "product", private: true, type: "module" }));
    writeFileSync(join(scratch, "product.js"), PRODUCT_JS);
    await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", `./${filename}`], { cwd: scratch });

    product = spawn(process.execPath, ["product.js"], {
      cwd: scratch,
      env: { PATH: process.env.PATH ?? "", REGISTRY_URL: registry.url, GOOD_TOKEN: service, BAD_TOKEN: newTestToken() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    productUrl = await new Promise<string>((resolve, reject) => {
      let out = "";
      product?.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /listening (\d+)/.exec(out);
        if (m) resolve(`http://127.0.0.1:${m[1]}`);
      });
      product?.stderr?.on("data", (d: Buffer) => {
        out += d.toString();
      });
      product?.on("exit", (code) => reject(new Error(`product exited with ${code}: ${out}`)));
    });
  }, 240_000);

  afterAll(async () => {
    product?.kill();
    await registry?.stop();
    rmSync(scratch, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("installs nothing of the server", () => {
    const installed = readdirSync(join(scratch, "node_modules")).filter((n) => !n.startsWith("."));
    expect(installed.sort()).toEqual(["@tenant-registry", "openapi-fetch", "openapi-typescript-helpers"]);
  });

  it("lets a valid key through with its principal", async () => {
    const res = await fetch(`${productUrl}/good`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ key_id: expect.any(String), tenant_id: expect.any(String), scopes: [] });
  });

  it("refuses a wrong key with 401 and the verify reason", async () => {
    const res = await fetch(`${productUrl}/good`, { headers: { authorization: "Bearer bp_AAAAAAAAAAAAAAAAAAAAAA" } });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain("Bearer");
    expect(await res.json()).toMatchObject({ code: "unauthorized", reason: "not_found" });
  });

  it("says that the registry refused the service's own token, not that it did not answer", async () => {
    const res = await fetch(`${productUrl}/bad`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(500);
    const body = (await res.json()) as { reason: string; detail: string };
    expect(body.reason).toBe("registry_token_refused");
    expect(body.detail).toContain("refused this service's token (401");
    expect(body.detail).not.toContain("did not answer");
  });

  it("registryAuthFetch answers a principal or a problem Response", async () => {
    const good = await fetch(`${productUrl}/fetch`, { headers: { authorization: `Bearer ${key}` } });
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({ key_id: expect.any(String) });
    const bad = await fetch(`${productUrl}/fetch`, { headers: { authorization: "Bearer nope" } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("content-type")).toBe("application/problem+json");
    expect(await bad.json()).toMatchObject({ reason: "malformed" });
  });
});
