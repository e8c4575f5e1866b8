import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { useReveal } from "./ui.js";

/**
 * A secret the registry shows once (a new API key, a new token): a read-only
 * field with Copy, brought into view when it appears. It lives in the
 * caller's memory only, gone on reload.
 */
export function ShownOnce({
  label,
  plaintext,
  onDismiss,
  children,
}: {
  label: string;
  plaintext: string;
  onDismiss(): void;
  children: ComponentChildren;
}) {
  const ref = useReveal<HTMLDivElement>(false);
  const [copied, setCopied] = useState<string>("");
  const id = `once-${label.toLowerCase().replace(/\W+/g, "-")}`;
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(plaintext);
      setCopied("Copied.");
    } catch {
      // Without clipboard permission, select it so Ctrl+C works.
      ref.current?.querySelector("input")?.select();
      setCopied("Selected: press Ctrl+C (or ⌘C) to copy.");
    }
  };
  return (
    <div ref={ref} class="card once">
      <label for={id}>{label}</label>
      <div class="inline">
        <input id={id} class="mono" readOnly value={plaintext} aria-describedby={`${id}-hint`} onFocus={(e) => e.currentTarget.select()} />
        <button type="button" onClick={copy}>
          Copy
        </button>
        <button type="button" onClick={onDismiss}>
          Done
        </button>
      </div>
      <p id={`${id}-hint`}>
        {children} <span role="status">{copied}</span>
      </p>
    </div>
  );
}
