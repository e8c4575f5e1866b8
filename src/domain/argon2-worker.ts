import { hashRawSync, type Options } from "@node-rs/argon2";

/** One hash for the pool in argon2-pool.ts; runs on a worker thread. */
export interface Argon2Task {
  password: string;
  options: Options;
  /** Epoch ms after which the caller has given up: skip the 64 MiB of work. */
  deadline: number;
}

export function argon2(task: Argon2Task): Uint8Array | null {
  if (Date.now() > task.deadline) return null;
  return hashRawSync(task.password, task.options);
}
