import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inject } from "vitest";
import { COMPILED_CLI } from "./compiled.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** Send a signal and resolve with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * A new embedded data directory, already created and migrated (a copy of
 * the one global-setup made): a server started on it skips initdb, which
 * costs seconds and ~800 MB. Tests of a first start use an empty folder.
 */
export function migratedDataDir(prefix = "tr-data-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cpSync(inject("pgliteDataDir"), dir, { recursive: true });
  return dir;
}

/**
 * Start `tenant-registry serve` as a user would (the compiled sources,
 * test/helpers/compiled.ts), on a free port; resolve once it logs that it is ready.
 * A fresh embedded data dir runs initdb first, which can take a minute on a busy machine: hence the generous default.
 */
export function startServerProcess(env: Record<string, string>, args: string[] = ["serve"], timeoutMs = 90_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, [COMPILED_CLI, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      // Never leave a half-started server behind.
      child.kill("SIGKILL");
      reject(new Error(`server did not start:\n${out}\n${err}`));
    }, timeoutMs);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}\n${err}`));
    });
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:\/\/[^"]+)".*"msg":"tenant-registry ready"/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({
          child,
          url: m[1],
          stdout: () => out,
          stderr: () => err,
          stop: (signal = "SIGTERM") => {
            child.kill(signal);
            return exited;
          },
        });
      }
    });
  });
}

/** Run the CLI (compiled, as above) to completion. */
export function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [COMPILED_CLI, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, stdout, stderr })));
}
