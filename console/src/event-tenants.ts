import { authHeaders } from "./api.js";

/** Read at most this many events, for at most this long, looking for a page's events. */
const MAX_EVENTS = 5000;
const MAX_MS = 10_000;

/**
 * The tenant of each audit event named by id (a webhook delivery carries its
 * event's id, not its tenant), found with one request: the audit stream,
 * resumed just before the oldest id and closed once the newest has come (or
 * after MAX_EVENTS / MAX_MS: a delivery whose event was not reached shows no
 * tenant). When every event has the same action, the stream is filtered by
 * it, so the registry sends only those.
 */
export async function eventTenants(
  token: string | null,
  events: readonly { id: string; action: string }[],
): Promise<Map<string, string | null>> {
  const found = new Map<string, string | null>();
  if (events.length === 0) return found;
  const ids = events.map((e) => BigInt(e.id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const first = ids[0] ?? 0n;
  const last = ids[ids.length - 1] ?? 0n;
  const wanted = new Set(events.map((e) => e.id));
  const actions = new Set(events.map((e) => e.action));
  const query = actions.size === 1 ? `?action=${encodeURIComponent([...actions][0] ?? "")}` : "";
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), MAX_MS);
  try {
    const res = await fetch(`/v1/audit/stream${query}`, {
      credentials: "same-origin",
      headers: { ...authHeaders(token), accept: "text/event-stream", "last-event-id": (first - 1n).toString() },
      signal: abort.signal,
    });
    if (!res.ok || !res.body) return found;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let read = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\n\n");
        const data = message
          .split("\n")
          .filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).trimStart())
          .join("\n");
        if (!data) continue;
        const event = JSON.parse(data) as { id: string; tenant_id: string | null };
        if (wanted.has(event.id)) found.set(event.id, event.tenant_id);
        if (++read >= MAX_EVENTS || BigInt(event.id) >= last || found.size === wanted.size) return found;
      }
    }
  } catch {
    // Aborted or unreadable: the deliveries show without their tenants.
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return found;
}
