import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "./helpers/cli.js";

/** Server-side packages a device must never load (the list of scripts/eslint-boundaries.js, plus the store's own). */
const SERVER_PACKAGES = ["better-sqlite3", "pg", "kysely", "fastify", "aedes", "ioredis", "mqemitter-redis", "pino", "@fastify/swagger", "@fastify/swagger-ui"];

/** Follows every relative import (static, re-export and dynamic) from `entry`, collecting package imports; type-only imports are skipped. */
function runtimeGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const source = readFileSync(file, "utf8");
    const specifiers = [
      ...source.matchAll(/^\s*(?:import|export)\s+(?!type\s)(?:[^'"]*?\sfrom\s+)?["']([^"']+)["']/gm),
      ...source.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
    ].map((m) => m[1]!);
    for (const specifier of specifiers) {
      if (specifier.startsWith(".")) queue.push(resolve(dirname(file), specifier).replace(/\.js$/, ".ts"));
      else if (!specifier.startsWith("node:")) packages.add(specifier);
    }
  }
  return { files, packages };
}

describe("device-side code loads no server package", () => {
  it("holds for the device door and the firmware door it imports", () => {
    for (const entry of ["src/device/index.ts", "src/firmware/index.ts"]) {
      const { files, packages } = runtimeGraph(resolve(REPO_ROOT, entry));
      expect(files.size).toBeGreaterThan(3);
      const offending = [...packages].filter((p) => SERVER_PACKAGES.some((s) => p === s || p.startsWith(`${s}/`)));
      expect([entry, offending]).toEqual([entry, []]);
      // Nothing under src/store, src/api, src/cli or src/main is reachable at run time.
      const serverFiles = [...files].filter((f) => /\/src\/(store|api|cli|broker|main\.ts)/.test(f));
      expect([entry, serverFiles]).toEqual([entry, []]);
    }
  });

  it("the walker does see server packages where they are (so the check above can fail)", () => {
    const store = runtimeGraph(resolve(REPO_ROOT, "src/store/migrations/0050_firmware.ts"));
    expect([...store.packages]).toContain("kysely");
    const device = runtimeGraph(resolve(REPO_ROOT, "src/device/index.ts"));
    expect([...device.packages]).toEqual(expect.arrayContaining(["tuf-js", "@tufjs/models", "@noble/post-quantum/ml-dsa.js"]));
  });
});
