import type { Logger } from "pino";
import { type SweepOptions, sweepExpiredTrials } from "./domain/trials.js";
import type { Db } from "./store/db.js";

export interface TrialSweeper {
  /** Resolves once no sweep is running and none will start. */
  stop(): Promise<void>;
}

/**
 * Runs the trial sweep now and then every `intervalMs` after the previous
 * one finished (a slow sweep never overlaps the next). A failed sweep (the
 * database away) is logged and retried at the next tick; reads do not
 * depend on it, since an ended trial reads as expired anyway.
 */
export function startTrialSweeper(db: Db, log: Pick<Logger, "info" | "warn">, intervalMs: number, opts: SweepOptions = {}): TrialSweeper {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const tick = () => {
    timer = undefined;
    running = sweepExpiredTrials(db, opts).then(
      (expired) => {
        if (expired > 0) log.info({ expired }, "trial sweep stored expired trials");
      },
      (err: unknown) => log.warn({ err: { message: (err as Error).message } }, "trial sweep failed; retrying at the next interval"),
    );
    running.then(() => {
      if (stopped) return;
      timer = setTimeout(tick, intervalMs);
      timer.unref();
    });
  };
  tick();

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
