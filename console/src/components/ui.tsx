import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useId, useRef, useState } from "preact/hooks";
import { ApiError, type Problem, problemOf } from "../api.js";
import { localTime, utcTitle } from "../format.js";
import { BASE, onLinkClick } from "../router.js";

export function Link(props: { to: string; children: ComponentChildren; current?: boolean; title?: string; class?: string }) {
  const { to, children, current, title } = props;
  return (
    <a href={BASE + to} onClick={onLinkClick} aria-current={current ? "page" : undefined} title={title} class={props.class}>
      {children}
    </a>
  );
}

export function Time({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span class="muted">—</span>;
  return (
    <time dateTime={iso} title={utcTitle(iso)}>
      {localTime(iso)}
    </time>
  );
}

export function toProblem(err: unknown): Problem {
  return err instanceof ApiError ? err.problem : problemOf(err);
}

/** Every failed call shows the problem's detail and its request id (to find it in the registry's logs). */
export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const p = toProblem(error);
  return (
    <div class="error" role="alert">
      <strong>{p.title}:</strong> {p.detail}
      {p.errors?.length ? (
        <ul class="problems">
          {p.errors.map((e) => (
            <li key={e.field}>
              {e.field}: {e.message}
            </li>
          ))}
        </ul>
      ) : null}
      {p.request_id ? <div class="muted">request id: {p.request_id}</div> : null}
    </div>
  );
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload(): void;
}

/** Load data for a screen; `deps` re-run it. A later answer always wins over an earlier one. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  const seq = useRef(0);
  useEffect(() => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => mine === seq.current && setState({ data, error: undefined, loading: false }),
      (error: unknown) => mine === seq.current && setState((s) => ({ data: s.data, error, loading: false })),
    );
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** A button running an async action: busy while it runs, its failure shown next to it by the caller. */
export function useAction(): [busy: boolean, error: unknown, run: (fn: () => Promise<void>) => Promise<void>, clear: () => void] {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = useCallback(async (fn: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    try {
      await fn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }, []);
  return [busy, error, run, () => setError(undefined)];
}

/** The screen's main heading; it takes focus when the screen opens, so keyboard and screen-reader users land on it. */
export function PageTitle({ children }: { children: ComponentChildren }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}

/**
 * An in-page confirmation (a modal <dialog>, never window.confirm): focus
 * moves into it, Escape closes it, and the Confirm button runs the action.
 */
export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  children: ComponentChildren;
  busy?: boolean;
  onConfirm(): void;
  onClose(): void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) d.showModal();
    if (!props.open && d.open) d.close();
  }, [props.open]);
  return (
    <dialog ref={ref} aria-labelledby={titleId} onClose={props.onClose}>
      <h2 id={titleId} class="dialog-title">
        {props.title}
      </h2>
      {props.children}
      <div class="actions">
        <button type="button" class="danger" disabled={props.busy} onClick={props.onConfirm}>
          Confirm
        </button>
        <button type="button" onClick={props.onClose}>
          Go back
        </button>
      </div>
    </dialog>
  );
}

/**
 * For what opens below the control that asked for it (a New … form, a secret
 * shown once): scroll it into view when it appears, and put the cursor in
 * its first field when `focusFirst`.
 */
export function useReveal<T extends HTMLElement>(focusFirst = true) {
  const ref = useRef<T>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.scrollIntoView({ block: "nearest" });
    if (focusFirst) el.querySelector<HTMLElement>("input, select, textarea")?.focus({ preventScroll: true });
  }, []);
  return ref;
}
