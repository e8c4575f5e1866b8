import { createServer } from "node:net";
import type { Logger } from "pino";
import { embeddedAdminToken } from "./admin-token.js";
import { buildApp } from "./app.js";
import { loadCatalogFile } from "./catalog-file.js";
import { type Config, ConfigError } from "./config.js";
import { syncCatalog } from "./domain/catalog.js";
import type { App } from "./http/types.js";
import { createLogger } from "./logger.js";
import { seedDemo } from "./seed.js";
import type { Db } from "./store/db.js";
import { openMigrationStore, openStore } from "./store/index.js";
import { migrateAtStart } from "./store/migrate.js";
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
  // A bad catalog or a taken port stops the start before anything touches the store or mints a token.
  const catalog = loadCatalogFile(config.catalogFile);
  await assertPortFree(config.host, config.port);
  const onDbError = (err: Error) => log.warn({ err: { message: err.message } }, "database connection error");
  const db = await openStore(config, onDbError);
  try {
    const applied = await migrateAtStart(db, () => openMigrationStore(config, onDbError));
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

/**
 * Fail early, with a message, when the address is taken: otherwise the store
 * would be opened (and an admin token minted) only for listen to fail with
 * EADDRINUSE at the very end. Port 0 picks a free port and needs no check.
 */
async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") {
        reject(new ConfigError(`${host}:${port} is already in use (another tenant-registry?): stop it, or set PORT to a free port`));
      } else if (err.code === "EADDRNOTAVAIL" || err.code === "ENOTFOUND") {
        reject(new ConfigError(`HOST=${host} is not an address of this machine: set HOST to one (default 127.0.0.1)`));
      } else reject(err);
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
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
