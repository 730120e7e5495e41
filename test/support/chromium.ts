import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { aptInstall } from "./debian-packages.js";

/** Debian's Chromium; playwright-core drives it and never downloads a browser of its own. */
export const CHROMIUM = "/usr/bin/chromium";

const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

let missing: string | undefined | null = null;

/**
 * Why Debian's Chromium cannot be had, or undefined when it is at /usr/bin/chromium (installed
 * with apt-get on first use when running as root). Under CI=true a machine without it fails the
 * run with the reason instead of skipping the browser suites.
 */
export function chromiumMissing(): string | undefined {
  if (missing === null) missing = existsSync(CHROMIUM) ? undefined : (aptInstall("chromium", "chromium") ?? (existsSync(CHROMIUM) ? undefined : `no ${CHROMIUM} after installing chromium`));
  if (missing && process.env.CI === "true") throw new Error(`${missing} (CI=true: the browser suites must run)`);
  return missing;
}

/** A headless Chromium with a fresh profile; `close()` ends it and removes the profile. */
export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Launches Debian's Chromium headless on a throwaway `--user-data-dir`. */
export async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "barge-chromium-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, acceptDownloads: true, viewport: { width: 1280, height: 800 } });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
