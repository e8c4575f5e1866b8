import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { type Browser, chromium, type Page } from "playwright-core";
import { expect } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const CONSOLE_DIST = join(ROOT, "dist", "console");

/** Debian's Chromium (apt-get install chromium); CHROMIUM_PATH overrides. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const HAVE_CHROMIUM = existsSync(CHROMIUM);

/** Newest modification time of the console's sources (a build older than this is stale). */
function newestSource(dir = join(ROOT, "console")): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** The browser tests drive the built console: build it when there is none or the sources changed since. */
export function ensureConsoleBuilt(): void {
  const index = join(CONSOLE_DIST, "index.html");
  if (existsSync(index) && statSync(index).mtimeMs >= newestSource()) return;
  execFileSync(process.execPath, [join(ROOT, "node_modules", "vite", "bin", "vite.js"), "build", "--config", "console/vite.config.ts"], {
    cwd: ROOT,
    // Vitest sets NODE_ENV=test, which would give a development build.
    env: { ...process.env, NODE_ENV: "production" },
    stdio: "pipe",
  });
}

/** Built JS and CSS, gzipped (what a browser downloads). */
export function bundleSizes(): { file: string; raw: number; gzip: number }[] {
  const dir = join(CONSOLE_DIST, "assets");
  return readdirSync(dir)
    .filter((f) => /\.(js|css)$/.test(f))
    .map((f) => {
      const body = readFileSync(join(dir, f));
      return { file: f, raw: body.length, gzip: gzipSync(body, { level: 9 }).length };
    });
}

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[] }[];
}

/**
 * Run axe-core in the page (through the DevTools protocol, which the page's
 * CSP does not govern) and fail on any serious or critical violation.
 */
export async function expectNoSeriousA11yViolations(page: Page, screen: string): Promise<void> {
  // Strings run in the page: this file is compiled without the DOM library.
  if (!(await page.evaluate<boolean>('"axe" in window'))) await page.evaluate(axeSource);
  const violations = await page.evaluate<AxeViolation[]>("axe.run(document).then((r) => r.violations)");
  const serious = violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(", ")}`);
  expect(serious, `axe on ${screen}`).toEqual([]);
}

/** No horizontal scrolling: the document is no wider than the viewport. */
export async function expectNoHorizontalScroll(page: Page, screen: string): Promise<void> {
  const { scroll, client } = await page.evaluate<{ scroll: number; client: number }>(
    "({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })",
  );
  expect(scroll, `${screen}: page ${scroll}px wide in a ${client}px viewport`).toBeLessThanOrEqual(client);
}

/**
 * Words in the elements matching `selector` that the layout broke across
 * lines ("enterp / rise"). A break at a <wbr> (between text nodes) or at a
 * space or hyphen is allowed; one inside a run of letters and digits is not.
 * Text inside `.break` / `.break-any` (hashes, keys, ids) is not checked.
 */
export async function brokenWords(page: Page, selector: string): Promise<string[]> {
  // A string run in the page: this file is compiled without the DOM library.
  return page.evaluate<string[]>(
    `((selector) => {
      const broken = [];
      for (const root of document.querySelectorAll(selector)) {
        const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          // Hashes, keys and ids marked to break anywhere are not words: a phone must wrap them.
          if (node.parentElement && node.parentElement.closest(".break, .break-any")) continue;
          const text = node.textContent || "";
          for (const m of text.matchAll(/[A-Za-z0-9]+/g)) {
            const tops = new Set();
            for (let i = m.index; i < m.index + m[0].length; i++) {
              const r = document.createRange();
              r.setStart(node, i);
              r.setEnd(node, i + 1);
              const rect = r.getBoundingClientRect();
              if (rect.width > 0) tops.add(Math.round(rect.top));
            }
            if (tops.size > 1) broken.push(m[0]);
          }
        }
      }
      return broken;
    })(${JSON.stringify(selector)})`,
  );
}

/** How many lines each element matching `selector` takes (distinct tops of its characters). */
export async function lineCounts(page: Page, selector: string): Promise<{ text: string; lines: number }[]> {
  return page.evaluate<{ text: string; lines: number }[]>(
    `((selector) => [...document.querySelectorAll(selector)].map((el) => {
      const r = document.createRange();
      r.selectNodeContents(el);
      const tops = new Set([...r.getClientRects()].filter((x) => x.width > 0).map((x) => Math.round(x.top)));
      return { text: el.textContent || "", lines: tops.size };
    }))(${JSON.stringify(selector)})`,
  );
}
