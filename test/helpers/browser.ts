import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { requirement } from "./requirements.js";

export const CHROMIUM = "/usr/bin/chromium";

/** Whether the Debian chromium is installed (skips loudly outside CI, fails under CI=true). */
export function requireChromium(): boolean {
  return requirement("chromium", existsSync(CHROMIUM), "install it with: apt-get install -y chromium (playwright-core drives it; no browser is downloaded)");
}

/**
 * Launches the Debian chromium headless in a fresh profile (Playwright takes the profile directory as a
 * persistent context, its form of --user-data-dir) with nothing that phones home (no sync, component
 * updates or background networking), so every request a page makes is one the test sees. The test CA is
 * not in the profile's trust store, so certificate errors are ignored for the loopback server only.
 */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), "moat-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
