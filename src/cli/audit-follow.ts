import { setTimeout as sleep } from "node:timers/promises";
import type { AuditEvent, RegistryClient } from "@tenant-registry/client";
import { note } from "./output.js";

export interface StreamFilters {
  tenant_id?: string;
  product?: string;
  actor_id?: string;
  action?: string;
}

/**
 * Follow the audit log over GET /v1/audit/stream, from just after `lastId`:
 * the registry sends every later event once, in id order, late commits
 * included. A dropped stream is resumed with Last-Event-ID. Returns false
 * when the registry has no stream (an older version): the caller polls.
 */
export async function followStream(
  client: RegistryClient,
  filters: StreamFilters,
  lastId: string,
  retryMs: number,
  print: (e: AuditEvent) => void,
): Promise<boolean> {
  let last = lastId;
  for (;;) {
    try {
      const { response } = await client.GET("/v1/audit/stream", {
        params: { query: filters, header: { "last-event-id": last } },
        parseAs: "stream",
      });
      if (response.status === 404) return false;
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      for await (const message of messages(response.body)) {
        if (message.event !== "audit" || !message.data) continue;
        const event = JSON.parse(message.data) as AuditEvent;
        print(event);
        last = event.id;
      }
      note("tenant-registry: the audit stream ended (retrying)");
    } catch (err) {
      note(`tenant-registry: the audit stream failed: ${(err as Error).message} (retrying)`);
    }
    await sleep(retryMs);
  }
}

async function* messages(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    for (let cut = buf.indexOf("\n\n"); cut >= 0; cut = buf.indexOf("\n\n")) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
      }
      yield { event, data };
    }
  }
}
