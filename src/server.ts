import type { Logger } from "pino";
import { embeddedAdminToken } from "./admin-token.js";
import { buildApp } from "./app.js";
import { loadCatalogFile } from "./catalog-file.js";
import type { Config } from "./config.js";
import { syncCatalog } from "./domain/catalog.js";
import type { App } from "./http/types.js";
import { createLogger } from "./logger.js";
import { seedDemo } from "./seed.js";
import type { Db } from "./store/db.js";
import { openStore } from "./store/index.js";
import { migrate } from "./store/migrate.js";
import { startTrialSweeper } from "./trial-sweeper.js";

export interface Running {
  app: App;
  db: Db;
  url: string;
  /** Stop accepting, finish in-flight requests, close the store. */
  stop(): Promise<void>;
}

/**
 * Read the catalog file, open the store, migrate, sync the catalog,
 * (embedded) seed and mint the admin token, then listen and start the trial
 * sweep. Printing the generated admin token, once, when it is generated, is
 * deliberate: it is how a new user of the embedded default learns it; it
 * never goes through the logger. Later starts read it from its file.
 */
export async function startServer(config: Config, log: Logger = createLogger(config.logLevel)): Promise<Running> {
  // A bad catalog stops the start before anything touches the store.
  const catalog = loadCatalogFile(config.catalogFile);
  const db = await openStore(config, (err) => log.warn({ err: { message: err.message } }, "database connection error"));
  try {
    const applied = await migrate(db);
    if (applied.length > 0) log.info({ applied }, "migrations applied");
    const changes = await db.tx((q) => syncCatalog(q, catalog));
    if (Object.values(changes).some((keys) => keys.length > 0)) log.info({ catalog: changes }, "catalog synced");

    if (config.store.engine === "pglite") {
      if (!config.adminToken) {
        const { token, file, created, looseMode } = embeddedAdminToken(config.store.dataDir);
        config.principals.unshift({ name: "admin", role: "admin", token });
        if (created) {
          process.stdout.write(
            `\n  Admin token (generated): ${token}\n` +
              (file
                ? `  Kept in ${file}; set REGISTRY_ADMIN_TOKEN to use your own.\n\n`
                : "  In memory only: it changes on every start.\n\n"),
          );
        } else {
          log.info({ file }, "admin token read from its file (not printed)");
        }
        if (looseMode !== null) {
          log.warn(
            { file, mode: looseMode.toString(8).padStart(4, "0") },
            "the admin token file can be read or written by others than its owner; run chmod 600 on it",
          );
        }
      }
      if (await seedDemo(db)) log.info("seeded the demo tenant 'acme'");
    }

    const app = await buildApp({ config, db, logger: log });
    await app.listen({ port: config.port, host: config.host });
    const address = app.server.address();
    const port = typeof address === "object" && address ? address.port : config.port;
    const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`;
    log.info({ url, engine: db.engine, docs: `${url}/docs` }, "tenant-registry ready");
    const sweeper = startTrialSweeper(db, log, config.trialSweepIntervalMs);

    let stopping: Promise<void> | undefined;
    const stop = () => {
      stopping ??= (async () => {
        await sweeper.stop();
        await app.close();
        await db.close();
      })();
      return stopping;
    };
    return { app, db, url, stop };
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
}

/** SIGTERM/SIGINT: graceful stop, bounded by SHUTDOWN_TIMEOUT_MS. */
export function stopOnSignals(running: Running, config: Config, log: Logger): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    log.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      log.error({ timeout_ms: config.shutdownTimeoutMs }, "shutdown timed out");
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    running.stop().then(
      () => {
        log.info("stopped");
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
