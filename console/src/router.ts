import { useEffect, useState } from "preact/hooks";

/** Every screen lives under this path; the registry serves the app for any path below it (deep links). */
export const BASE = "/console/";

const CHANGE = "console:navigate";

/** The path below BASE, without a leading slash ("tenants/…"). */
export function currentRoute(): string {
  const p = window.location.pathname;
  return p.startsWith(BASE) ? p.slice(BASE.length) : "";
}

export function navigate(route: string, replace = false): void {
  const url = BASE + route.replace(/^\/+/, "");
  if (replace) window.history.replaceState(null, "", url);
  else window.history.pushState(null, "", url);
  window.dispatchEvent(new Event(CHANGE));
}

export function useRoute(): string {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const update = () => setRoute(currentRoute());
    window.addEventListener("popstate", update);
    window.addEventListener(CHANGE, update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener(CHANGE, update);
    };
  }, []);
  return route;
}

/** A click on an in-app link changes the route without a reload; modified clicks keep the browser's meaning. */
export function onLinkClick(e: MouseEvent): void {
  const a = (e.currentTarget as HTMLAnchorElement | null) ?? null;
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const href = a.getAttribute("href") ?? "";
  if (!href.startsWith(BASE)) return;
  e.preventDefault();
  navigate(href.slice(BASE.length));
}
