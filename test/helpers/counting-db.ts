import type { Db, Queryable } from "../../src/store/db.js";
import type { TestDb } from "./db.js";

/** The same store, counting the statements sent through it (to prove a path runs no SQL). */
export function countingStore(store: TestDb): { store: TestDb; queries: () => number } {
  let n = 0;
  const count = (q: Queryable): Queryable => ({
    query: (text, values) => {
      n++;
      return q.query(text, values);
    },
    exec: (sql) => {
      n++;
      return q.exec(sql);
    },
  });
  const db: Db = {
    ...store.db,
    ...count(store.db),
    engine: store.db.engine,
    tx: (fn) => store.db.tx((q) => fn(count(q))),
    listen: (...args) => store.db.listen(...args),
    stats: () => store.db.stats(),
    close: () => store.db.close(),
  };
  return { store: { ...store, db }, queries: () => n };
}
