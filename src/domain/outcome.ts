/** What an operation did: `changed` false means an idempotent no-op (no audit). */
export interface Outcome<T> {
  value: T;
  changed: boolean;
}
