/**
 * Runs the README's walk-throughs the way a new user follows them, so they
 * cannot rot: in this clone (fresh: no data/ yet, dependencies installed),
 * in order, and checks that they wrote nothing into the work tree that git
 * would pick up.
 *
 * Shell blocks marked `<!-- walkthrough: server -->` run, in order, in one
 * bash session against a fresh `npm start` this script starts and stops;
 * blocks marked `<!-- walkthrough: standalone -->` then run in another
 * session and start their own processes. Each session runs with `set -euo
 * pipefail`. Port 8080 and 3000 become free ports picked here, so the check
 * runs beside anything else on the machine.
 *
 *   node scripts/readme-walkthroughs.js            # run them
 *   node scripts/readme-walkthroughs.js --print    # print the scripts only
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";

const readme = readFileSync("README.md", "utf8");
const blocks = { server: [], standalone: [] };
for (const m of readme.matchAll(/<!-- walkthrough: (server|standalone) -->\n```sh\n([\s\S]*?)\n```/g)) blocks[m[1]].push(m[2]);
if (blocks.server.length === 0 || blocks.standalone.length === 0) {
  process.stderr.write("readme-walkthroughs: no marked walk-through blocks found in README.md\n");
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
const localize = (text) =>
  text
    .replaceAll("127.0.0.1:8080", `127.0.0.1:${registryPort}`)
    .replaceAll("127.0.0.1:3000", `127.0.0.1:${productPort}`)
    .replaceAll("PORT=3000", `PORT=${productPort}`);
const script = (parts) => `set -euo pipefail\n${parts.map(localize).join("\n\n")}\n`;

if (process.argv.includes("--print")) {
  process.stdout.write(`# against a fresh server:\n${script(blocks.server)}\n# standalone:\n${script(blocks.standalone)}`);
  process.exit(0);
}
if (existsSync("data")) {
  process.stderr.write("readme-walkthroughs: run in a fresh clone (data/ exists already)\n");
  process.exit(1);
}

// The settings a user starts with: none, but the port.
const env = { ...process.env, PORT: String(registryPort), REGISTRY_URL: `http://127.0.0.1:${registryPort}` };
for (const k of ["DATABASE_URL", "MIGRATION_DATABASE_URL", "DATA_DIR", "REGISTRY_ADMIN_TOKEN", "REGISTRY_TOKENS", "REGISTRY_TOKEN"])
  delete env[k];

function bash(text, name) {
  process.stdout.write(`\n=== README walk-through: ${name} ===\n`);
  // Its own process group, so whatever it leaves running is stopped with it.
  const child = spawn("bash", ["-c", text], { env, stdio: "inherit", detached: true });
  return new Promise((resolve) => {
    child.on("exit", (code) => {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      resolve(code);
    });
  });
}

let failed = false;
const server = spawn("npm", ["start"], { env, stdio: ["ignore", "pipe", "inherit"], detached: true });
let log = "";
const ready = await new Promise((resolve) => {
  server.stdout.on("data", (d) => {
    log += d.toString();
    if (log.includes('"msg":"tenant-registry ready"')) resolve(true);
  });
  server.on("exit", () => resolve(false));
  setTimeout(() => resolve(false), 180_000).unref();
});
if (!ready) {
  process.stderr.write(`readme-walkthroughs: npm start did not become ready:\n${log}\n`);
  failed = true;
} else {
  failed ||= (await bash(script(blocks.server), "against npm start")) !== 0;
}
const stopped = new Promise((resolve) => server.on("exit", resolve));
try {
  process.kill(-server.pid, "SIGTERM");
} catch {}
await stopped;
if (!failed) failed ||= (await bash(script(blocks.standalone), "the whole story")) !== 0;

// Nothing a walk-through wrote may be something git would commit.
const untracked = execFileSync("git", ["status", "--porcelain", "--untracked-files=all"], { encoding: "utf8" }).trim();
if (untracked) {
  process.stderr.write(`readme-walkthroughs: the walk-throughs left files git would pick up:\n${untracked}\n`);
  failed = true;
}
process.stdout.write(failed ? "\nREADME walk-throughs: FAILED\n" : "\nREADME walk-throughs: all passed\n");
process.exit(failed ? 1 : 0);
