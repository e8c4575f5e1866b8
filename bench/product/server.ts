/**
 * The product of the product benchmark: one node:http route, as a product
 * team writes it, protected by `registryAuth` from the compiled client
 * package (packages/client/dist, what the packed tarball holds) when
 * PROTECT=1, and the very same route unprotected when PROTECT=0.
 * GET /_state (before any middleware) says whether the registry's change
 * feed is live and how many verify calls the middleware has made, so the
 * bench can show that it measured the cached path.
 */
import { createServer } from "node:http";

type Client = typeof import("@tenant-registry/client");
const { registryAuth }: Client = await import(new URL("../../packages/client/dist/index.js", import.meta.url).href);

const protect = process.env.PROTECT === "1";
let verifies = 0;
const counting: typeof fetch = (input, init) => {
  if (String(input instanceof Request ? input.url : input).endsWith("/v1/internal/api-keys/verify")) verifies++;
  return fetch(input, init);
};
const auth = protect
  ? registryAuth({
      url: process.env.REGISTRY_URL ?? "",
      token: process.env.REGISTRY_TOKEN ?? "",
      product: "crm",
      scope: "read",
      fetch: counting,
    })
  : undefined;

const body = JSON.stringify({ invoices: [] });
const route = (res: import("node:http").ServerResponse) =>
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);

const server = createServer((req, res) => {
  if (req.url === "/_state") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ live: auth?.live() ?? false, verifies }));
    return;
  }
  if (!auth) return route(res);
  auth(req, res, (err) => {
    if (err) res.writeHead(500).end();
    else route(res);
  });
});
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1");
process.on("SIGTERM", () => {
  auth?.close();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
