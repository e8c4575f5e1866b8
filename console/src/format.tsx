import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";

const pad = (n: number) => String(n).padStart(2, "0");

/**
 * One date format on every screen: the viewer's local time as
 * "2026-12-02 15:04:05", whatever the browser's locale (unambiguous, sorts
 * as text, matches the Since/Until fields). The UTC value is on hover
 * (title) and in the datetime attribute.
 */
export function localTime(iso: string | Date): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function utcTitle(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : `${d
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, "")} UTC`;
}

/** <input type="datetime-local"> speaks local wall time without a zone; the API speaks UTC RFC 3339. */
export function fromLocalInput(value: string): string | null {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

export function toLocalInput(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Phones: the width at which the stylesheet's narrow layout starts. */
const narrow = typeof matchMedia === "function" ? matchMedia("(max-width: 640px)") : null;

export function useNarrow(): boolean {
  const [is, setIs] = useState(narrow?.matches ?? false);
  useEffect(() => {
    if (!narrow) return;
    const change = () => setIs(narrow.matches);
    narrow.addEventListener("change", change);
    return () => narrow.removeEventListener("change", change);
  }, []);
  return is;
}

/**
 * A name made of parts (tenant.activated, entitlement.trial_started,
 * dana@example.com): on a phone it may wrap after its dots, underscores and
 * @ (a <wbr>), never inside a word; where there is room it stays whole
 * (Chromium breaks at a <wbr> even under white-space: nowrap).
 */
export function Breakable({ text }: { text: string }): JSX.Element {
  const isNarrow = useNarrow();
  if (!isNarrow) return <>{text}</>;
  return <>{text.split(/(?<=[._@])/).flatMap((part, i) => (i === 0 ? [part] : [<wbr key={i} />, part]))}</>;
}
