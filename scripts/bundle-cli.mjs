// Bundles the CLI entry (src/cli/bin.ts) with esbuild over tsc's dist/cli/bin.js. Loading one file per
// command group costs a fraction of resolving and reading the hundreds of modules behind it, which is
// most of a short command's run time. Command groups stay separate chunks (dynamic imports), so a
// command still loads only its own group. The library exports keep tsc's plain dist/<domain>/ layout.
import { rmSync } from "node:fs";
import { build } from "esbuild";

// Chunk names carry a content hash: drop the previous build's so none is left behind.
rmSync("dist/cli/chunks", { recursive: true, force: true });

await build({
  entryPoints: { bin: "src/cli/bin.ts" },
  outdir: "dist/cli",
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: true,
  logLevel: "warning",
  // Native addons and optional back ends load from node_modules when (and only when) they are used;
  // server-only packages stay external too: they read files beside their own modules, and only
  // `moat serve` loads them, where start-up time matters less.
  external: [
    "better-sqlite3",
    "pkcs11js",
    "pg",
    "ioredis",
    "mqemitter-redis",
    "aedes",
    "aedes-persistence-redis",
    "fastify",
    "@fastify/*",
    "pino",
    "ws",
  ],
  // Bundled CommonJS packages call require() for Node built-ins; an ES module has none of its own.
  banner: { js: "import { createRequire as moatCreateRequire } from 'node:module'; const require = moatCreateRequire(import.meta.url);" },
});
