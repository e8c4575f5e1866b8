/**
 * This process's own subscribers, by channel. A notification sent through a
 * store is delivered to them when its transaction commits, straight from
 * memory, besides going through the database to every other instance: an
 * instance's own change takes effect on it at once, even while its LISTEN
 * connection is slow or lost. A subscriber may therefore hear its own
 * instance's notification twice (once locally, once back from the
 * database); every use here is idempotent.
 */
export class LocalChannels {
  private readonly subscribers = new Map<string, Set<(payload: string) => void>>();

  add(channel: string, onMessage: (payload: string) => void): () => void {
    let set = this.subscribers.get(channel);
    if (!set) {
      set = new Set();
      this.subscribers.set(channel, set);
    }
    set.add(onMessage);
    return () => {
      set.delete(onMessage);
    };
  }

  deliver(channel: string, payload: string): void {
    for (const fn of this.subscribers.get(channel) ?? []) fn(payload);
  }
}

/** The notifications one transaction sent, delivered locally if and when it commits. */
export class PendingNotes {
  private readonly notes: [string, string][] = [];

  constructor(private readonly channels: LocalChannels) {}

  add(channel: string, payload: string): void {
    this.notes.push([channel, payload]);
  }

  committed(): void {
    for (const [channel, payload] of this.notes) this.channels.deliver(channel, payload);
  }
}
