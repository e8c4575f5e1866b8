import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface Spawned {
  child: ChildProcess;
  url: string;
  /** Resident and peak resident memory of the process, in MiB (Linux /proc). */
  memory(): { rss: number; peak: number };
  stop(): Promise<void>;
}

/** Runs `node --import tsx <script>` in its own process; resolves once a stdout line carries its URL. */
export function spawnServer(script: string, args: string[], env: Record<string, string>): Promise<Spawned> {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let head = "";
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start:\n${head}\n${err}`)), 30_000);
    child.on("exit", (code) => reject(new Error(`${script} exited with ${code}:\n${head}\n${err}`)));
    // Keep draining stdout (request logs) so the server never blocks on a full pipe.
    child.stdout?.on("data", (d: Buffer) => {
      if (head.length > 100_000) return;
      head += d.toString();
      const url = /"url":"(http:\/\/[^"]+)"/.exec(head)?.[1];
      if (url) {
        clearTimeout(timer);
        head = " ".repeat(100_001);
        resolve({
          child,
          url,
          memory: () => memoryOf(child.pid ?? 0),
          stop: () => {
            child.kill("SIGTERM");
            return exited;
          },
        });
      }
    });
  });
}

function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}
