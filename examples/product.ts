/**
 * A sample product service protected by the registry's verify middleware.
 * Run: REGISTRY_TOKEN=<a service token> node --import tsx examples/product.ts
 * Settings: REGISTRY_URL (default http://127.0.0.1:8080), PRODUCT (default billing), PORT (default 3000).
 */

import { type RegistryPrincipal, registryAuthHook } from "@tenant-registry/client";
import Fastify from "fastify";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by registryAuthHook once the request's API key verified. */
    registryAuth?: RegistryPrincipal;
  }
}

const token = process.env.REGISTRY_TOKEN;
if (!token) {
  process.stderr.write("Set REGISTRY_TOKEN to a registry token of role service.\n");
  process.exit(2);
}

const app = Fastify();
app.addHook(
  "onRequest",
  registryAuthHook({ url: process.env.REGISTRY_URL ?? "http://127.0.0.1:8080", token, product: process.env.PRODUCT ?? "billing" }),
);
app.get("/invoices", async (request) => ({ tenant_id: request.registryAuth?.tenant_id, invoices: [] }));

const url = await app.listen({ port: Number(process.env.PORT ?? 3000), host: "127.0.0.1" });
process.stdout.write(`sample product on ${url}/invoices\n`);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void app.close());
