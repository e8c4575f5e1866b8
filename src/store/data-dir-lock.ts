import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Only one process may open an embedded data directory: PGlite keeps its
 * own copy of the database in memory, so two processes on one directory
 * each see only their own writes and overwrite each other's.
 *
 * The lock is a file created with O_EXCL (atomic on every local file
 * system) that names its holder: pid, host, process start time. A lock
 * whose holder is gone (SIGKILL, power loss) is stale and is taken over:
 * the holder is gone when no process has its pid on this host, or when the
 * process with that pid started at another time (the pid was reused; on
 * Linux, from /proc), or when the pid is this process's own and this
 * process holds no lock (containers restart as pid 1). A lock from another
 * host is never taken over: its holder cannot be checked from here.
 * docs/reliability.md ("One process per data directory") has the rest.
 */
export const LOCK_FILE = "registry.lock";

export interface LockHolder {
  pid: number;
  host: string;
  started_at: string;
  /** Linux: the process start time in clock ticks since boot (/proc/<pid>/stat field 22); null elsewhere. */
  start_ticks: string | null;
  /** Tells this lock apart from a later one with the same holder fields. */
  nonce: string;
}

export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
  constructor(
    readonly dir: string,
    readonly holder: LockHolder,
  ) {
    const here = holder.host === hostname();
    super(
      `data directory ${dir} is in use by another tenant-registry process (pid ${holder.pid} on ${holder.host}, started ${holder.started_at}). ` +
        (here
          ? "Stop that process, or point DATA_DIR at another directory."
          : `It cannot be checked from this host; if that process is gone, delete ${join(dir, LOCK_FILE)}.`),
    );
  }
}

export interface DataDirLock {
  readonly file: string;
  /** Remove the lock file if it is still this lock. */
  release(): void;
}

/** Data dirs this process holds, by real path: a second open in the same process is refused too. */
const held = new Set<string>();

function startTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold anything.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

function readHolder(file: string): { raw: string; holder: LockHolder | null } | null {
  let raw: string;
  try {
    raw = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  try {
    const h = JSON.parse(raw) as LockHolder;
    return { raw, holder: typeof h.pid === "number" && typeof h.host === "string" ? h : null };
  } catch {
    return { raw, holder: null };
  }
}

/** True while the holder may still be running. */
function holderAlive(h: LockHolder, realDir: string): boolean {
  if (h.host !== hostname()) return true;
  if (h.pid === process.pid) return held.has(realDir);
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    // EPERM: a process with this pid exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
  }
  if (h.start_ticks === null) return true;
  const now = startTicks(h.pid);
  return now === null || now === h.start_ticks;
}

/**
 * Move a stale lock aside, but only if it is still the one judged stale:
 * another process may have broken it and taken a fresh lock since it was
 * read. Whatever is moved aside by mistake is put back.
 */
function breakStale(file: string, staleRaw: string): void {
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    renameSync(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  try {
    if (readFileSync(aside, "utf8") !== staleRaw) linkSync(aside, file);
  } catch {
    // EEXIST: yet another process has locked meanwhile; it holds the directory now.
  } finally {
    unlinkSync(aside);
  }
}

/** A lock file being written right now is empty for a moment; one this old and still unreadable is debris. */
const UNREADABLE_GRACE_MS = 2_000;

/** Take the data directory's lock, or throw DataDirLockedError naming the holder. */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  const realDir = realpathSync(dir);
  const file = join(realDir, LOCK_FILE);
  const me: LockHolder = {
    pid: process.pid,
    host: hostname(),
    started_at: new Date(Date.now() - Math.round(process.uptime() * 1000)).toISOString(),
    start_ticks: startTicks(process.pid),
    nonce: randomBytes(8).toString("hex"),
  };
  const mine = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; attempt < 100; attempt++) {
    if (held.has(realDir)) throw new DataDirLockedError(dir, readHolder(file)?.holder ?? me);
    try {
      const fd = openSync(file, "wx", 0o600);
      try {
        writeSync(fd, mine);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      held.add(realDir);
      return {
        file,
        release() {
          held.delete(realDir);
          if (readHolder(file)?.raw === mine) unlinkSync(file);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const found = readHolder(file);
    if (found === null) continue;
    if (found.holder === null) {
      let age = 0;
      try {
        age = Date.now() - statSync(file).mtimeMs;
      } catch {
        continue;
      }
      if (age < UNREADABLE_GRACE_MS) {
        await sleep(50);
        continue;
      }
    } else if (holderAlive(found.holder, realDir)) {
      throw new DataDirLockedError(dir, found.holder);
    }
    breakStale(file, found.raw);
  }
  throw new Error(`could not lock data directory ${dir}: its lock file keeps changing; is another process starting?`);
}
