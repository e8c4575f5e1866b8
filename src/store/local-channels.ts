/**
 * An instance's own notifications, delivered to its own subscribers once.
 *
 * A notification sent through the pg store inside a transaction reaches
 * this instance's subscribers from memory when the transaction commits, so
 * an instance's own change takes effect on it at once, even while its
 * LISTEN connection is slow or lost. The same notification also comes back
 * through the database. Each subscriber keeps the notifications of its own
 * instance that it expects from both paths and lets through whichever copy
 * arrives first, dropping the other: one delivery per notification, as
 * before. (After a lost channel the bookkeeping is cleared; a duplicate is
 * then possible, which every use tolerates.)
 */
interface Note {
  /** Where the note stands for one subscriber. */
  state: "pending" | "local" | "db" | "done";
}

/** One expected notification, as `OwnNotes.expect` returns it. */
export interface OwnNote {
  note: Note;
  key: string;
}

export class OwnNotes {
  /** By `<sender backend pid>\n<payload>`, oldest first. */
  private readonly byKey = new Map<string, Note[]>();

  constructor(private readonly deliver: (payload: string) => void) {}

  /** Inside the transaction, before commit: a copy may come back from this sender. */
  expect(senderPid: number, payload: string): OwnNote {
    const note: Note = { state: "pending" };
    const key = `${senderPid}\n${payload}`;
    const list = this.byKey.get(key);
    if (list) list.push(note);
    else this.byKey.set(key, [note]);
    return { note, key };
  }

  /** The transaction rolled back: nothing will come. */
  forget({ note, key }: OwnNote): void {
    this.remove(key, note);
  }

  /** The transaction committed: deliver now unless the database's copy already was. */
  committed({ note, key }: OwnNote, payload: string): void {
    if (note.state === "db") {
      this.remove(key, note);
      return;
    }
    note.state = "local";
    this.deliver(payload);
  }

  /** A copy from the database: deliver unless memory already did. */
  fromDb(senderPid: number, payload: string): void {
    const key = `${senderPid}\n${payload}`;
    const note = this.byKey.get(key)?.find((n) => n.state === "pending" || n.state === "local");
    if (note?.state === "local") {
      this.remove(key, note);
      return;
    }
    if (note) note.state = "db";
    this.deliver(payload);
  }

  /** The channel was lost: no copy is owed any more. */
  clear(): void {
    this.byKey.clear();
  }

  private remove(key: string, note: Note): void {
    note.state = "done";
    const list = this.byKey.get(key);
    if (!list) return;
    const i = list.indexOf(note);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byKey.delete(key);
  }
}
