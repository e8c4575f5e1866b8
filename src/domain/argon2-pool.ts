import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import type { Options } from "@node-rs/argon2";
import { Piscina } from "piscina";
import type { Argon2Task } from "./argon2-worker.js";
import { AppError } from "./errors.js";

export interface Argon2PoolOptions {
  threads: number;
  /** Hashes that may wait for a thread; more are refused at once. */
  maxQueue: number;
  /** A hash that waited this long is dropped: its caller gets 503 instead of a late answer. */
  maxWaitMs: number;
  /** A worker thread failed (its task fails too); without a listener the process would crash. */
  onError: (err: Error) => void;
}

/**
 * Lower CPU priority for the hashing threads. Verifying a cached key costs
 * microseconds and hashing costs ~15 ms of CPU, so under a flood of keys
 * that must be hashed, the kernel keeps serving the event loop (and with it
 * every cached verify) first; on an idle machine the threads still get all
 * the CPU there is.
 */
const NICE_INCREMENT = 10;

const overloaded = () =>
  new AppError("unavailable", "too many API keys are being checked right now; retry shortly", { retryAfterSeconds: 1 });

/**
 * argon2 off the event loop, with bounded concurrency (one hash per thread,
 * each holding 64 MiB) and a bounded queue: beyond it, or past `maxWaitMs`,
 * the caller gets `unavailable` (503 with Retry-After) rather than memory
 * growing without bound.
 */
export class Argon2Pool {
  private readonly pool: Piscina;
  private rejected = 0;
  private hashed = 0;

  constructor(private readonly opts: Argon2PoolOptions) {
    // The sources run through tsx (no build step), and a worker thread does not inherit its loader. It is
    // named by path: a bare "tsx" would be looked up from the working directory, wherever the server started.
    const ts = import.meta.url.endsWith(".ts");
    this.pool = new Piscina({
      filename: new URL(`./argon2-worker.${ts ? "ts" : "js"}`, import.meta.url).href,
      name: "argon2",
      execArgv: ts ? ["--import", pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href] : [],
      minThreads: 1,
      maxThreads: opts.threads,
      maxQueue: opts.maxQueue,
      idleTimeout: 60_000,
      niceIncrement: process.platform === "linux" ? NICE_INCREMENT : 0,
    });
    this.pool.on("error", opts.onError);
  }

  async hashRaw(password: string, options: Options): Promise<Buffer> {
    const task: Argon2Task = { password, options, deadline: Date.now() + this.opts.maxWaitMs };
    let out: Uint8Array | null;
    try {
      out = (await this.pool.run(task)) as Uint8Array | null;
    } catch (err) {
      if (err instanceof Error && /queue is at limit|No task queue available/.test(err.message)) {
        this.rejected++;
        throw overloaded();
      }
      throw err;
    }
    if (out === null) {
      this.rejected++;
      throw overloaded();
    }
    this.hashed++;
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  }

  stats(): { threads: number; queued: number; hashed: number; rejected: number } {
    return { threads: this.pool.threads.length, queued: this.pool.queueSize, hashed: this.hashed, rejected: this.rejected };
  }

  /** Lets queued hashes finish, then stops the threads. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
