import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newTestToken } from "./helpers/app.js";
import { openTestDb, type TestDb } from "./helpers/db.js";
import { migratedDataDir, runCli, type ServerProcess, startServerProcess } from "./helpers/process.js";
import { type Receiver, startReceiver } from "./helpers/receiver.js";

describe("the CLI's webhooks commands against a running registry", () => {
  const dataDir = migratedDataDir("tr-cli-hooks-");
  const admin = newTestToken();
  let store: TestDb | undefined;
  let server: ServerProcess;
  let receiver: Receiver;
  let env: Record<string, string>;

  beforeAll(async () => {
    store = process.env.TEST_DATABASE_URL ? await openTestDb("postgres") : undefined;
    server = await startServerProcess({
      ...(store?.url ? { DATABASE_URL: store.url } : { DATA_DIR: dataDir }),
      REGISTRY_ADMIN_TOKEN: admin,
      WEBHOOK_ALLOW_PRIVATE: "true",
    });
    receiver = await startReceiver();
    env = { REGISTRY_URL: server.url, REGISTRY_TOKEN: admin, DATA_DIR: dataDir };
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
    await store?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("creates, tests, lists deliveries, retries, rotates and deletes an endpoint", { timeout: 120_000 }, async () => {
    const created = await runCli(["webhooks", "create", receiver.url, "--event", "tenant.*", "--description", "crm", "--json"], env);
    expect(created.code, created.stderr).toBe(0);
    const hook = JSON.parse(created.stdout) as { id: string; secret: string };
    expect(hook.secret).toMatch(/^whsec_/);

    const test = await runCli(["webhooks", "test", hook.id, "--json"], env);
    expect(test.code, test.stderr).toBe(0);
    await receiver.waitFor(1);
    expect(receiver.verifyAll(hook.secret)[0]).toMatchObject({ type: "webhook.test", data: { webhook_id: hook.id } });

    const deliveries = await runCli(["webhooks", "deliveries", hook.id, "--status", "succeeded", "--json"], env);
    expect(deliveries.code, deliveries.stderr).toBe(0);
    const [delivery] = (JSON.parse(deliveries.stdout) as { deliveries: { id: string; event_type: string }[] }).deliveries;
    expect(delivery?.event_type).toBe("webhook.test");

    const retry = await runCli(["webhooks", "retry", hook.id, delivery?.id ?? ""], env);
    expect(retry.code, retry.stderr).toBe(0);
    await receiver.waitFor(2);

    const rotated = await runCli(["webhooks", "rotate", hook.id, "--json"], env);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(JSON.parse(rotated.stdout).secret).toMatch(/^whsec_/);

    const list = await runCli(["webhooks", "list"], env);
    expect(list.stdout).toContain(hook.id);
    expect(list.stdout).not.toContain(hook.secret);

    expect((await runCli(["webhooks", "delete", hook.id], env)).code).toBe(0);
    const gone = await runCli(["webhooks", "deliveries", hook.id], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/not found/);
    const bad = await runCli(["webhooks", "create", "http://127.0.0.1/x"], env);
    expect(bad.code).toBe(2);
  });
});
