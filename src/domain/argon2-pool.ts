import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import type { Options } from "@node-rs/argon2";
import { Piscina } from "piscina";
import type { Argon2Task } from "./argon2-worker.js";
import { AppError } from "./errors.js";

export interface Argon2PoolOptions {
  threads: number;
  /** Hashes that may wait for a thread, all groups together (see `hashRaw` for who gives way when full). */
  maxQueue: number;
  /** A hash that waited this long is dropped: its caller gets 503 instead of a late answer. */
  maxWaitMs: number;
  /** A worker thread failed (its task fails too); without a listener the process would crash. */
  onError: (err: Error) => void;
  /** How long a refusal for a full queue is held before it is answered (default SHED_DELAY_MS). */
  shedDelayMs?: number;
  /** At most this many refusals are held at once; past it they are answered at once (default MAX_HELD). */
  maxHeld?: number;
}

/**
 * A hash refused because the queue is full is answered after this long, not
 * at once (a tarpit; at most MAX_HELD at a time). A flood is a closed loop of connections that each ask
 * again as soon as they are answered: answered at once, 150 of them spin
 * the event loop on refusals and starve the hashing threads, so that the
 * other tenants' hashes — the ones the queue is fair to — crawl. Held for
 * the second its Retry-After names, the flood asks ~150 times a second
 * instead of thousands, and costs the server almost nothing in the wait.
 */
export const SHED_DELAY_MS = 1000;
/**
 * The tarpit's bound: a held refusal keeps its request open (a few KB),
 * and a flood over many connections, or pipelined, could otherwise hold
 * without limit. Past this many, refusals are answered at once.
 */
export const MAX_HELD = 1024;

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

interface Job {
  task: Argon2Task;
  group: string;
  /** How long it may wait for a thread, and again for that thread to start it. */
  waitMs: number;
  resolve: (out: Buffer) => void;
  reject: (err: unknown) => void;
}

/**
 * argon2 off the event loop, with bounded concurrency (one hash per thread,
 * each holding 64 MiB), shared fairly between groups (tenants; see
 * docs/api-keys.md, "The argon2 pool and fairness"):
 * - a free thread takes the next waiting hash of the next group in turn
 *   (round robin), so a group with a thousand callers gets the same share
 *   of the threads as a group with one;
 * - at most `maxQueue` hashes wait in all. When the queue is full, the
 *   group with the most waiting gives way (longest-queue drop): its newest
 *   waiting hash is refused to admit the newcomer, provided it has at least
 *   two more waiting than the newcomer's group; otherwise the newcomer is
 *   refused. A flood fills the queue only until someone else needs a place;
 * - a hash that waited `maxWaitMs` is dropped rather than answered late.
 * Refused callers get `unavailable` (503 + Retry-After), never a wrong answer.
 */
export class Argon2Pool {
  private readonly pool: Piscina;
  /** Waiting jobs by group; Map order is the round-robin order. */
  private readonly waiting = new Map<string, Job[]>();
  private queued = 0;
  private running = 0;
  private rejected = 0;
  private shed = 0;
  private hashed = 0;
  /** Refusals being held (the tarpit), each with its timer, answered early by close(). */
  private readonly held = new Map<NodeJS.Timeout, () => void>();

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
      // The fair queue here feeds the threads one task each; Piscina's own queue stays empty.
      maxQueue: opts.threads,
      idleTimeout: 60_000,
      niceIncrement: process.platform === "linux" ? NICE_INCREMENT : 0,
    });
    this.pool.on("error", opts.onError);
  }

  /**
   * `group`: whose share the hash counts against (a tenant id; "" for none).
   * `waitMs`: how long it may wait (default `maxWaitMs`, the bound for verify).
   */
  hashRaw(password: string, options: Options, group = "", waitMs = this.opts.maxWaitMs): Promise<Buffer> {
    if (this.running >= this.opts.threads && this.queued >= this.opts.maxQueue && !this.makeRoomFor(group)) {
      this.shed++;
      return this.refuseLater();
    }
    return new Promise<Buffer>((resolve, reject) => {
      const job: Job = { task: { password, options, deadline: Date.now() + waitMs }, group, waitMs, resolve, reject };
      const list = this.waiting.get(group);
      if (list) list.push(job);
      else this.waiting.set(group, [job]);
      this.queued++;
      this.dispatch();
    });
  }

  /** The queue is full: refuse the newest hash of the longest group if it has two or more waiting beyond `group`'s. */
  private makeRoomFor(group: string): boolean {
    const own = this.waiting.get(group)?.length ?? 0;
    let longest: Job[] | undefined;
    for (const list of this.waiting.values()) if (!longest || list.length > longest.length) longest = list;
    if (!longest || longest.length <= own + 1) return false;
    const evicted = longest.pop() as Job;
    if (longest.length === 0) this.waiting.delete(evicted.group);
    this.queued--;
    this.shed++;
    this.refuseLater().catch(evicted.reject);
    return true;
  }

  /** A refusal for a full queue, answered after `shedDelayMs` (see SHED_DELAY_MS), or at once past `maxHeld`. */
  private refuseLater(): Promise<never> {
    const delay = this.opts.shedDelayMs ?? SHED_DELAY_MS;
    if (delay <= 0 || this.held.size >= (this.opts.maxHeld ?? MAX_HELD)) return Promise.reject(overloaded());
    return new Promise<never>((_, reject) => {
      const answer = () => {
        this.held.delete(timer);
        reject(overloaded());
      };
      const timer = setTimeout(answer, delay);
      timer.unref();
      this.held.set(timer, answer);
    });
  }

  private dispatch(): void {
    while (this.running < this.opts.threads && this.queued > 0) {
      const next = this.waiting.entries().next();
      if (next.done) return;
      const [group, list] = next.value;
      const job = list.shift() as Job;
      // Move the group to the back of the line (or drop it when it has nothing more waiting).
      this.waiting.delete(group);
      if (list.length > 0) this.waiting.set(group, list);
      this.queued--;
      if (Date.now() > job.task.deadline) {
        this.rejected++;
        job.reject(overloaded());
        continue;
      }
      // Past the queue, the thread slot is this job's: a thread that is still starting gets the same allowance again.
      job.task.deadline = Date.now() + job.waitMs;
      this.running++;
      this.run(job);
    }
  }

  private async run(job: Job): Promise<void> {
    try {
      const out = (await this.pool.run(job.task)) as Uint8Array | null;
      if (out === null) {
        this.rejected++;
        job.reject(overloaded());
      } else {
        this.hashed++;
        job.resolve(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
      }
    } catch (err) {
      job.reject(err);
    } finally {
      this.running--;
      this.dispatch();
    }
  }

  /** `rejected`: a hash waited too long; `shed`: refused for a full queue; `held`: such refusals being held now. */
  stats(): { threads: number; queued: number; held: number; hashed: number; rejected: number; shed: number; groups: number } {
    return {
      threads: this.pool.threads.length,
      queued: this.queued,
      held: this.held.size,
      hashed: this.hashed,
      rejected: this.rejected,
      shed: this.shed,
      groups: this.waiting.size,
    };
  }

  /** Answers held refusals at once, lets waiting hashes finish, then stops the threads. */
  async close(): Promise<void> {
    for (const [timer, answer] of [...this.held]) {
      clearTimeout(timer);
      answer();
    }
    while (this.queued > 0 || this.running > 0) await new Promise((r) => setTimeout(r, 10));
    await this.pool.close();
  }
}
