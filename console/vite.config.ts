import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));
// `npm run dev:console` proxies the API to a registry started with `npm start` (or REGISTRY_URL).
const registry = process.env.REGISTRY_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  root,
  base: "/console/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: fileURLToPath(new URL("../dist/console", import.meta.url)),
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
  },
  server: {
    host: "127.0.0.1",
    proxy: Object.fromEntries(["/v1", "/readyz", "/healthz", "/metrics", "/openapi.json"].map((p) => [p, registry])),
  },
});
