import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportLeaves, verifyOffline, verifyOnline } from "../../src/cli/audit-log.js";
import { checkpointText, generateSigner, parseVerifierKey, signNote } from "../../src/domain/audit-log/note.js";
import { openTestApp, type TestApp } from "../helpers/app.js";
import { ENGINES } from "../helpers/db.js";

/** Go and Debian's golang.org/x/mod (GOPATH layout): the independent verifier runs only where they are installed. */
const GOPATH_TREE = "/usr/share/gocode";
const hasGo =
  spawnSync("go", ["version"], { stdio: "ignore" }).status === 0 && existsSync(join(GOPATH_TREE, "src/golang.org/x/mod/sumdb/note"));
const GO_VERIFIER = join(dirname(fileURLToPath(import.meta.url)), "go-verifier");

/** What a command printed. */
function sink(): { out: Writable; text: () => string } {
  let s = "";
  return {
    out: new Writable({
      write(chunk, _enc, cb) {
        s += String(chunk);
        cb();
      },
    }),
    text: () => s,
  };
}

describe.each(ENGINES)("audit verify on %s", (engine) => {
  let t: TestApp;
  let url: string;
  let dir: string;
  beforeAll(async () => {
    t = await openTestApp(engine);
    url = await t.app.listen({ host: "127.0.0.1", port: 0 });
    dir = mkdtempSync(join(tmpdir(), "audit-verify-"));
  });
  afterAll(() => t.close());

  const key = async () => (await t.call(null, "GET", "/v1/audit/log/key")).body;
  const size = async () => {
    const res = await t.call("auditor", "GET", "/v1/audit/log/checkpoint");
    return res.statusCode === 200 ? Number(res.body.split("\n")[1]) : 0;
  };
  const appendAndWait = async (n: number) => {
    const res = await t.call("service", "POST", "/v1/audit/batch", {
      events: Array.from({ length: n }, (_, i) => ({ action: "verify.test", target_id: `t${i}`, metadata: { i } })),
    });
    expect(res.statusCode).toBe(201);
    const ids = (res.json().events as { id: string }[]).map((e) => e.id);
    await expect
      .poll(async () => (await t.call("auditor", "GET", "/v1/audit?action=verify.test&limit=1000")).json().events.at(-1)?.log_index, {
        timeout: 15_000,
        interval: 50,
      })
      .not.toBeNull();
    const list = (await t.call("auditor", "GET", "/v1/audit?action=verify.test&limit=1000")).json().events as {
      id: string;
      log_index: number;
    }[];
    const last = list.find((e) => e.id === ids.at(-1));
    await expect.poll(size, { timeout: 15_000, interval: 50 }).toBeGreaterThan(last?.log_index ?? 0);
    return list.filter((e) => ids.includes(e.id));
  };
  const options = (extra: Record<string, string> = {}) => ({
    url,
    token: t.tokens.auditor,
    key: undefined as string | undefined,
    ...extra,
  });
  /** As the database owner, past the append-only trigger. */
  const asOwner = async (sql: string, values: unknown[]) => {
    await t.store.db.tx(async (q) => {
      await q.query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only");
      await q.query(sql, values);
      await q.query("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only");
    });
  };

  it("verifies the log, saves and extends a checkpoint, exports and verifies offline", async () => {
    await appendAndWait(20);
    const k = await key();
    const saved = join(dir, "saved.checkpoint");
    const first = sink();
    await verifyOnline({ ...options(), save: saved }, parseVerifierKey(k), first.out);
    const n1 = Number(readFileSync(saved, "utf8").split("\n")[1]);
    expect(first.text()).toMatch(new RegExp(`^verified ${n1} events up to root [A-Za-z0-9+/]{43}= \\(tenant-registry/[0-9a-f]{32}\\)\\n$`));

    await appendAndWait(5);
    const second = sink();
    await verifyOnline({ ...options(), since: saved }, parseVerifierKey(k), second.out);
    expect(Number(/^verified (\d+)/.exec(second.text())?.[1])).toBeGreaterThanOrEqual(n1 + 5);

    // Offline: an export of the newest checkpoint's entries, byte for byte, verifies on its own.
    const checkpoint = join(dir, "offline.checkpoint");
    await verifyOnline({ ...options(), save: checkpoint }, parseVerifierKey(k), sink().out);
    const entries = join(dir, "entries.ndjson");
    const file = sink();
    const count = await exportLeaves(options(), file.out);
    writeFileSync(entries, file.text());
    const offline = sink();
    verifyOffline({ ...options(), entries, checkpoint }, parseVerifierKey(k), offline.out);
    expect(offline.text()).toMatch(new RegExp(`^verified ${count} events`));

    // A checkpoint signed by another key is refused, even with the same name and a true root.
    const other = generateSigner(k.split("+")[0] as string).signer;
    const [origin, n, root] = readFileSync(checkpoint, "utf8").split("\n") as [string, string, string];
    const forged = join(dir, "forged.checkpoint");
    writeFileSync(forged, signNote(checkpointText({ origin, size: Number(n), root: Buffer.from(root, "base64") }), other));
    expect(() => verifyOffline({ ...options(), entries, checkpoint: forged }, parseVerifierKey(k), sink().out)).toThrow(/refused/);
    // And a changed export is caught offline.
    writeFileSync(entries, file.text().replace('"i":3', '"i":4'));
    expect(() => verifyOffline({ ...options(), entries, checkpoint }, parseVerifierKey(k), sink().out)).toThrow(/verification failed/);
  }, 120_000);

  it.skipIf(!hasGo)(
    "Go's sumdb/note and sumdb/tlog accept the checkpoint and an export",
    async () => {
      await appendAndWait(3);
      const k = await key();
      const checkpoint = join(dir, "go.checkpoint");
      await verifyOnline({ ...options(), save: checkpoint }, parseVerifierKey(k), sink().out);
      const file = sink();
      await exportLeaves(options(), file.out);
      const entries = join(dir, "go.ndjson");
      writeFileSync(entries, file.text());
      const bin = join(dir, "go-verifier");
      const env = { ...process.env, GO111MODULE: "off", GOPATH: `${join(dir, "gopath")}:${GOPATH_TREE}`, GOCACHE: join(dir, "gocache") };
      execFileSync("go", ["build", "-o", bin, "."], { cwd: GO_VERIFIER, env, stdio: "pipe" });
      const [, n, root] = readFileSync(checkpoint, "utf8").split("\n");
      expect(execFileSync(bin, [k.trim(), checkpoint, entries], { encoding: "utf8" })).toBe(`ok ${n} ${root}\n`);
      // The same program refuses a changed export and a checkpoint under another key.
      writeFileSync(join(dir, "go-bad.ndjson"), file.text().replace('"action":"verify.test"', '"action":"verify.tesT"'));
      expect(spawnSync(bin, [k.trim(), checkpoint, join(dir, "go-bad.ndjson")]).status).toBe(1);
      const other = generateSigner(k.split("+")[0] as string);
      const forged = join(dir, "go-forged.checkpoint");
      const [origin] = readFileSync(checkpoint, "utf8").split("\n") as [string];
      writeFileSync(
        forged,
        signNote(checkpointText({ origin, size: Number(n), root: Buffer.from(root as string, "base64") }), other.signer),
      );
      expect(spawnSync(bin, [k.trim(), forged, entries]).status).toBe(1);
    },
    180_000,
  );

  it("names the entry an owner changed, then the one an owner deleted", async () => {
    const events = await appendAndWait(30);
    const k = parseVerifierKey(await key());
    const saved = join(dir, "before-tamper.checkpoint");
    await verifyOnline({ ...options(), save: saved }, k, sink().out);

    const changed = events[7] as { id: string; log_index: number };
    await asOwner(`UPDATE audit_events SET metadata = '{"i": 700}' WHERE id = $1`, [changed.id]);
    await expect(verifyOnline({ ...options(), since: saved }, k, sink().out)).rejects.toThrow(
      new RegExp(`entry ${changed.log_index} \\(event id ${changed.id}\\) differs`),
    );
    await asOwner(`UPDATE audit_events SET metadata = '{"i": 7}' WHERE id = $1`, [changed.id]);
    await verifyOnline({ ...options(), since: saved }, k, sink().out);

    const deleted = events[3] as { id: string; log_index: number };
    await asOwner("DELETE FROM audit_events WHERE id = $1", [deleted.id]);
    await expect(verifyOnline({ ...options(), since: saved }, k, sink().out)).rejects.toThrow(
      new RegExp(`entry ${deleted.log_index} \\(event id ${deleted.id}\\) differs`),
    );
  }, 120_000);
});
