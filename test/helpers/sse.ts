export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

/**
 * A server-sent-events subscription read with fetch: collects messages
 * (comments skipped) as they arrive.
 */
export interface SseClient {
  status: number;
  headers: Headers;
  messages: SseMessage[];
  /** Resolves once the stream has ended (server closed it). */
  ended: Promise<void>;
  waitFor(pred: (all: SseMessage[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string>): Promise<SseClient> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: abort.signal });
  const messages: SseMessage[] = [];
  let endedResolve: () => void = () => {};
  const ended = new Promise<void>((r) => {
    endedResolve = r;
  });
  if (res.body) {
    void (async () => {
      const decoder = new TextDecoder();
      let buf = "";
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let cut = buf.indexOf("\n\n");
          while (cut >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            const m: SseMessage = { event: "message", data: "" };
            let has = false;
            for (const line of block.split("\n")) {
              if (line.startsWith(":")) continue;
              const i = line.indexOf(":");
              const field = i < 0 ? line : line.slice(0, i);
              const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
              if (field === "id") m.id = value;
              else if (field === "event") m.event = value;
              else if (field === "data") m.data = m.data ? `${m.data}\n${value}` : value;
              has = true;
            }
            if (has) messages.push(m);
            cut = buf.indexOf("\n\n");
          }
        }
      } catch {
        // aborted
      } finally {
        endedResolve();
      }
    })();
  } else endedResolve();
  return {
    status: res.status,
    headers: res.headers,
    messages,
    ended,
    async waitFor(pred, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (!pred(messages)) {
        if (Date.now() > until) throw new Error(`stream: condition not met; got ${messages.length} messages`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => abort.abort(),
  };
}
