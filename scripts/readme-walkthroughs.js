/**
 * Runs the code blocks of README.md, docs/*.md and packages/client/README.md
 * that are meant to be run, the way a new user follows them, so they cannot
 * rot: in this clone (fresh: no data/ yet, dependencies installed), in
 * order, and checks that they wrote nothing into the work tree that git
 * would pick up. A block runs when the line before it marks it:
 *
 * - `<!-- walkthrough: server -->` + a `sh` block: runs against a fresh
 *   `npm start` this script starts and stops. README.md's run in one bash
 *   session, in order; each other file's in a session of its own, after
 *   them.
 * - `<!-- walkthrough: client -->` + a `js` block: a product's code. Saved as
 *   an `.mjs` file in a scratch plain-JavaScript project (no TypeScript,
 *   nothing of the server) where the packed `@tenant-registry/client`
 *   tarball is installed, and run with `node`, against the same server. It
 *   must exit 0 within a minute. It finds in its environment
 *   `REGISTRY_URL`, `REGISTRY_TOKEN` (the admin token), `SERVICE_TOKEN` (a
 *   principal of role `service`), `API_KEY` (a key of an active tenant
 *   entitled to `billing`, scope `read`) and `PORT` (a free port).
 * - `<!-- walkthrough: standalone -->` + a `sh` block: after the server is
 *   stopped, in another session; starts its own processes.
 *
 * Each bash session runs with `set -euo pipefail`, with `PORT` (the
 * registry's), `REGISTRY_URL` and `PRODUCT_PORT` set to free ports picked
 * here, so the check runs beside anything else on the machine: a marked
 * block must say `${PORT:-8080}`, `${REGISTRY_URL:-http://127.0.0.1:8080}`
 * and the like, never a bare 8080 or 3000 (checked). Unmarked blocks are
 * illustrations (output, configuration for another system) and do not run.
 *
 *   node scripts/readme-walkthroughs.js            # run them
 *   node scripts/readme-walkthroughs.js --print    # print what would run
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const FILES = [
  "README.md",
  ...readdirSync("docs")
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
  "packages/client/README.md",
];
const MARK = /<!-- walkthrough: (server|standalone|client) -->\n```(\w*)\n([\s\S]*?)\n```/g;

/** file -> { server: [], standalone: [], client: [] } */
const blocks = new Map();
const problems = [];
for (const file of FILES) {
  const text = readFileSync(file, "utf8");
  const found = { server: [], standalone: [], client: [] };
  for (const m of text.matchAll(MARK)) {
    const [, kind, lang, code] = m;
    const want = kind === "client" ? "js" : "sh";
    if (lang !== want) problems.push(`${file}: a "${kind}" walk-through block must be \`\`\`${want}, not \`\`\`${lang}`);
    // Shell: ports come from variables with defaults; what is left after removing `${VAR:-…}` may not name one.
    // (JavaScript reads process.env with the default beside it.)
    const bare =
      want === "sh" && code.replace(/\$\{\w+:-[^}]*\}/g, "").match(/(?<![\w-])(127\.0\.0\.1|localhost):(8080|3000)\b|\bPORT=(8080|3000)\b/);
    if (bare) problems.push(`${file}: a walk-through block hard-codes ${bare[0]}; use \${PORT:-8080}, \${REGISTRY_URL:-…} or the like`);
    found[kind].push(code);
  }
  if (found.server.length + found.standalone.length + found.client.length > 0) blocks.set(file, found);
}
const readme = blocks.get("README.md");
if (!readme || readme.server.length === 0 || readme.standalone.length === 0)
  problems.push("README.md: no marked walk-through blocks found");
if (problems.length > 0) {
  process.stderr.write(`readme-walkthroughs:\n  ${problems.join("\n  ")}\n`);
  process.exit(1);
}

const script = (parts) => `set -euo pipefail\n${parts.join("\n\n")}\n`;
const clientBlocks = [...blocks].flatMap(([file, b]) =>
  b.client.map((code, i) => ({ file, name: `${file.replace(/\W+/g, "-")}-${i + 1}.mjs`, code })),
);

if (process.argv.includes("--print")) {
  for (const [file, b] of blocks) {
    if (b.server.length) process.stdout.write(`# ${file}, against a fresh server:\n${script(b.server)}\n`);
    if (b.standalone.length) process.stdout.write(`# ${file}, standalone:\n${script(b.standalone)}\n`);
  }
  for (const c of clientBlocks) process.stdout.write(`// ${c.file} -> ${c.name} (node, in a plain-JS project)\n${c.code}\n\n`);
  process.exit(0);
}
if (existsSync("data")) {
  process.stderr.write("readme-walkthroughs: run in a fresh clone (data/ exists already)\n");
  process.exit(1);
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });

const registryPort = await freePort();
const productPort = await freePort();
const registryUrl = `http://127.0.0.1:${registryPort}`;

// The settings a user starts with: none, but the ports. `tenant-registry` on PATH as after a global install.
const shims = mkdtempSync(join(tmpdir(), "tr-walkthrough-bin-"));
writeFileSync(join(shims, "tenant-registry"), `#!/bin/sh\nexec node ${JSON.stringify(resolve("bin/tenant-registry.js"))} "$@"\n`, {
  mode: 0o755,
});
const env = {
  ...process.env,
  PATH: `${process.env.PATH}:${shims}`,
  PORT: String(registryPort),
  REGISTRY_URL: registryUrl,
  PRODUCT_PORT: String(productPort),
};
for (const k of ["DATABASE_URL", "MIGRATION_DATABASE_URL", "DATA_DIR", "REGISTRY_ADMIN_TOKEN", "REGISTRY_TOKENS", "REGISTRY_TOKEN"])
  delete env[k];

function run(command, args, name, extra = {}) {
  process.stdout.write(`\n=== walk-through: ${name} ===\n`);
  // Its own process group, so whatever it leaves running is stopped with it.
  const child = spawn(command, args, { env: { ...env, ...extra.env }, cwd: extra.cwd, stdio: "inherit", detached: true });
  const timer = extra.timeoutMs
    ? setTimeout(() => {
        process.stderr.write(`readme-walkthroughs: ${name} still running after ${extra.timeoutMs} ms; stopping it\n`);
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {}
      }, extra.timeoutMs)
    : undefined;
  return new Promise((resolve) => {
    child.on("exit", (code) => {
      clearTimeout(timer);
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      resolve(code);
    });
  });
}
const bash = (text, name) => run("bash", ["-c", text], name);

/** What the client blocks need: a service principal, and a key for billing of an active tenant. */
async function clientFixtures(adminToken) {
  const post = async (path, body) => {
    const res = await fetch(`${registryUrl}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const tenant = await post("/v1/tenants", { slug: `walkthrough-${randomBytes(3).toString("hex")}`, name: "Walk-through" });
  await post(`/v1/tenants/${tenant.id}/activate`);
  await post("/v1/entitlements", { tenant_id: tenant.id, product: "billing", status: "active" });
  return (await post("/v1/api-keys", { tenant_id: tenant.id, name: "walkthrough", product: "billing", scopes: ["read"] })).key;
}

/** A plain-JavaScript project with the packed client installed, as a product team makes it. */
function clientProject() {
  const dir = mkdtempSync(join(tmpdir(), "tr-walkthrough-client-"));
  const packed = JSON.parse(
    execFileSync("npm", ["pack", "-w", "@tenant-registry/client", "--pack-destination", dir, "--json"], { encoding: "utf8" }),
  );
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "product", private: true, type: "module" }));
  // The Fastify example needs Fastify, as a product on Fastify has it: the version this repository uses.
  const extra = clientBlocks.some((c) => /from "fastify"/.test(c.code))
    ? [`fastify@${JSON.parse(readFileSync("node_modules/fastify/package.json", "utf8")).version}`]
    : [];
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", `./${packed[0].filename}`, ...extra], {
    cwd: dir,
    stdio: "inherit",
  });
  return dir;
}

let failed = false;
const serviceToken = `svc_${randomBytes(18).toString("base64url")}`;
const server = spawn("npm", ["start"], {
  env: { ...env, REGISTRY_TOKENS: `walkthrough-svc:service:${serviceToken}` },
  stdio: ["ignore", "pipe", "inherit"],
  detached: true,
});
let log = "";
const ready = await new Promise((resolve) => {
  server.stdout.on("data", (d) => {
    log += d.toString();
    if (log.includes('"msg":"tenant-registry ready"')) resolve(true);
  });
  server.on("exit", () => resolve(false));
  // The first start compiles dist/ (a minute; several on a loaded machine).
  setTimeout(() => resolve(false), 600_000).unref();
});
let clientDir;
if (!ready) {
  process.stderr.write(`readme-walkthroughs: npm start did not become ready:\n${log}\n`);
  failed = true;
} else {
  for (const [file, b] of blocks) {
    if (b.server.length === 0) continue;
    failed ||= (await bash(script(b.server), `${file} against npm start`)) !== 0;
    if (failed) break;
  }
  if (!failed && clientBlocks.length > 0) {
    try {
      const adminToken = readFileSync("data/admin-token", "utf8").trim();
      const apiKey = await clientFixtures(adminToken);
      clientDir = clientProject();
      const clientEnv = { REGISTRY_TOKEN: adminToken, SERVICE_TOKEN: serviceToken, API_KEY: apiKey, PORT: String(productPort) };
      for (const c of clientBlocks) {
        writeFileSync(join(clientDir, c.name), `${c.code}\n`);
        const code = await run(process.execPath, [c.name], `${c.file}: node ${c.name}`, {
          cwd: clientDir,
          env: clientEnv,
          timeoutMs: 60_000,
        });
        if (code !== 0) {
          failed = true;
          break;
        }
      }
    } catch (err) {
      process.stderr.write(`readme-walkthroughs: client blocks: ${err instanceof Error ? err.message : String(err)}\n`);
      failed = true;
    }
  }
}
const stopped = new Promise((resolve) => server.on("exit", resolve));
try {
  process.kill(-server.pid, "SIGTERM");
} catch {}
await stopped;
for (const [file, b] of blocks) {
  if (failed || b.standalone.length === 0) continue;
  failed ||= (await bash(script(b.standalone), `${file}, the whole story`)) !== 0;
}
rmSync(shims, { recursive: true, force: true });
if (clientDir) rmSync(clientDir, { recursive: true, force: true });

// Nothing a walk-through wrote may be something git would commit.
const untracked = execFileSync("git", ["status", "--porcelain", "--untracked-files=all"], { encoding: "utf8" }).trim();
if (untracked) {
  process.stderr.write(`readme-walkthroughs: the walk-throughs left files git would pick up:\n${untracked}\n`);
  failed = true;
}
process.stdout.write(failed ? "\nWalk-throughs: FAILED\n" : "\nWalk-throughs: all passed\n");
process.exit(failed ? 1 : 0);
