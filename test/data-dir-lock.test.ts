import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { DataDirLockedError, LOCK_FILE, lockDataDir } from "../src/store/data-dir-lock.js";
import { newTestToken } from "./helpers/app.js";
import { migratedDataDir, runCli, startServerProcess } from "./helpers/process.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const dirs: string[] = [];
const newDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The pid of a process that has exited (so no process has it, for now). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.on("exit", resolve));
  return child.pid as number;
}

const lockText = (fields: Record<string, unknown>) =>
  `${JSON.stringify({ pid: 1, host: hostname(), started_at: "2026-01-01T00:00:00.000Z", start_ticks: null, nonce: "x", ...fields })}\n`;

describe("the data directory lock", () => {
  it("is exclusive within a process too, and free again once released", async () => {
    const dir = newDir("tr-lock-");
    const lock = await lockDataDir(dir);
    expect(statSync(lock.file).mode & 0o777).toBe(0o600);
    const holder = JSON.parse(readFileSync(lock.file, "utf8"));
    expect(holder).toMatchObject({ pid: process.pid, host: hostname() });
    await expect(lockDataDir(dir)).rejects.toThrow(DataDirLockedError);
    lock.release();
    expect(existsSync(lock.file)).toBe(false);
    (await lockDataDir(dir)).release();
  });

  it("takes over the lock of a process that is gone", async () => {
    const dir = newDir("tr-lock-");
    writeFileSync(join(dir, LOCK_FILE), lockText({ pid: await deadPid() }));
    const lock = await lockDataDir(dir);
    expect(JSON.parse(readFileSync(lock.file, "utf8")).pid).toBe(process.pid);
    lock.release();
  });

  it("takes over a lock whose pid now belongs to a process started at another time (pid reuse)", async () => {
    const dir = newDir("tr-lock-");
    // Our parent is alive, but did not start at tick 1.
    writeFileSync(join(dir, LOCK_FILE), lockText({ pid: process.ppid, start_ticks: "1" }));
    const lock = await lockDataDir(dir);
    lock.release();
  });

  it("refuses a live holder, and a holder on another host, naming the directory and the holder", async () => {
    const dir = newDir("tr-lock-");
    writeFileSync(join(dir, LOCK_FILE), lockText({ pid: process.ppid, start_ticks: null }));
    await expect(lockDataDir(dir)).rejects.toThrow(
      `data directory ${dir} is in use by another tenant-registry process (pid ${process.ppid}`,
    );
    writeFileSync(join(dir, LOCK_FILE), lockText({ pid: await deadPid(), host: "elsewhere.example" }));
    await expect(lockDataDir(dir)).rejects.toThrow(
      `on elsewhere.example, started 2026-01-01T00:00:00.000Z). It cannot be checked from this host; if that process is gone, delete ${join(dir, LOCK_FILE)}`,
    );
  });

  it("of processes racing to take over one stale lock, exactly one wins", async () => {
    const dir = newDir("tr-lock-race-");
    writeFileSync(join(dir, LOCK_FILE), lockText({ pid: await deadPid() }));
    const script = `
      import { lockDataDir } from ${JSON.stringify(join(ROOT, "src/store/data-dir-lock.ts"))};
      await new Promise((r) => setTimeout(r, Number(process.env.START_AT) - Date.now()));
      try { await lockDataDir(${JSON.stringify(dir)}); process.stdout.write("won"); await new Promise((r) => setTimeout(r, 3000)); }
      catch (err) { process.stdout.write(err.name); }`;
    const startAt = String(Date.now() + 4000);
    const runs = Array.from({ length: 6 }, () => {
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? "", START_AT: startAt },
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
      });
      return new Promise<string>((resolve) => child.on("exit", () => resolve(out)));
    });
    const outcomes = await Promise.all(runs);
    expect(outcomes.filter((o) => o === "won")).toHaveLength(1);
    expect(outcomes.filter((o) => o === "DataDirLockedError")).toHaveLength(5);
  }, 60_000);
});

describe("two server processes on one data directory", () => {
  it("the second exits non-zero naming the directory and the holder; the first keeps serving; a SIGKILLed holder does not block the next start", async () => {
    const dataDir = migratedDataDir("tr-lock-srv-");
    dirs.push(dataDir);
    const token = newTestToken();
    const env = { DATA_DIR: dataDir, REGISTRY_ADMIN_TOKEN: token };
    const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const first = await startServerProcess(env, undefined, 120_000);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);

    const second = await runCli(["serve"], { ...env, PORT: "0" });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain(
      `data directory ${dataDir} is in use by another tenant-registry process (pid ${first.child.pid} on ${hostname()}, started `,
    );
    expect(second.stderr).not.toMatch(/\bat .+:\d+:\d+/);
    const migrating = await runCli(["migrate"], env);
    expect(migrating.code).not.toBe(0);
    expect(migrating.stderr).toContain(`data directory ${dataDir} is in use`);

    const created = await fetch(`${first.url}/v1/tenants`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ slug: "kept-by-first", name: "Written while a second start was refused" }),
    });
    expect(created.status).toBe(201);
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);

    await first.stop("SIGKILL");
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(true);
    const third = await startServerProcess(env, undefined, 120_000);
    const read = await fetch(`${third.url}/v1/tenants/by-slug/kept-by-first`, { headers: auth });
    expect(read.status).toBe(200);
    expect(await third.stop("SIGTERM")).toBe(0);
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
  }, 400_000);

  it("tightens an existing data directory to 0700 and warns about a readable admin token file", async () => {
    // An existing data directory (already created and migrated), opened to others.
    const dataDir = migratedDataDir("tr-perm-");
    dirs.push(dataDir);
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, "admin-token"), `${newTestToken()}\n`, { mode: 0o644 });
    chmodSync(join(dataDir, "admin-token"), 0o644);
    const server = await startServerProcess({ DATA_DIR: dataDir }, undefined, 120_000);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(server.stdout()).not.toContain("Admin token");
    expect(server.stdout()).toMatch(
      /"level":40,.*"mode":"0644".*"msg":"the admin token file can be read or written by others than its owner; run chmod 600 on it"/,
    );
    expect(await server.stop()).toBe(0);
  }, 200_000);
});
