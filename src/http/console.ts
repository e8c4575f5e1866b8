import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import { AppError } from "../domain/errors.js";
import type { App } from "./types.js";

/**
 * The admin console's own headers. Scripts and styles come only from the
 * registry itself (no inline script, no eval), the app talks only to this
 * origin, and no other site may frame it.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** Vite names built assets by content hash: a changed file is a new URL, so they can be cached for a year. */
const HASHED_ASSET = /^assets\/[A-Za-z0-9._-]+\.(?:js|css|svg|png|woff2?)$/;

/** The package root: the nearest folder above this module with the package's package.json (source or compiled). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "console"))) return dir;
    const up = dirname(dir);
    if (up === dir) return join(dirname(fileURLToPath(import.meta.url)), "..", "..");
    dir = up;
  }
}

export interface ConsoleOptions {
  /** Where the built console is (default: dist/console in the package). */
  root?: string;
}

/**
 * Serves the built console at /console/: hashed assets with long cache
 * lifetimes, and index.html (never cached) for every other path below
 * /console/, so deep links and reloads work. Static and public: the app
 * itself calls /v1 with the token the user signs in with.
 */
export async function consoleRoutes(app: App, opts: ConsoleOptions): Promise<void> {
  const root = opts.root ?? join(packageRoot(), "dist", "console");
  await app.register(fastifyStatic, { root, serve: false, cacheControl: false, etag: true, lastModified: true, index: false });

  app.addHook("onSend", async (_req, reply) => {
    reply.header("content-security-policy", CONSOLE_CSP);
    reply.header("x-frame-options", "DENY");
    reply.header("cross-origin-opener-policy", "same-origin");
  });

  app.get("/console", { schema: { hide: true } }, async (_req, reply) => reply.redirect("/console/", 301));

  app.get<{ Params: { "*": string } }>("/console/*", { schema: { hide: true } }, async (req, reply) => {
    if (!existsSync(join(root, "index.html"))) {
      throw new AppError("unavailable", "the console is not built: run `npm run build` (or `npm run build:console`) and reload");
    }
    const path = req.params["*"];
    if (HASHED_ASSET.test(path)) {
      if (!existsSync(join(root, path))) throw new AppError("not_found", `no console asset ${path}`);
      reply.header("cache-control", "public, max-age=31536000, immutable");
      return reply.sendFile(path);
    }
    // Any other path is a screen of the app (deep link): the app reads the path itself.
    reply.header("cache-control", "no-cache");
    return reply.sendFile("index.html");
  });
}
