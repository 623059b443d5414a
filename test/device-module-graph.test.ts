import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "./helpers/cli.js";
import { tempDir } from "./helpers/temp.js";

// The device side must run without the server: loading `moat/device` or `moat/firmware/verify`
// loads no server package and no server module. This follows the real module graph of the built
// package (dist/, which `npm test` builds first): a child node resolves the export through the
// package's own `exports` map (a self-reference), a module.register resolve hook records every
// module the ES loader resolves, and the CommonJS cache adds what CommonJS packages require()
// (those calls do not pass through the ES hooks on Node 20).

/** Packages the device side must never load (a name, or a name followed by `/…`). */
const SERVER_PACKAGES = ["fastify", "@fastify/swagger", "@fastify/swagger-ui", "aedes", "aedes-persistence-redis", "mqemitter-redis", "kysely", "better-sqlite3", "pg", "ioredis", "pino", "commander"];
/** Built modules of the server: whole folders, the composition roots, and firmware's server-side services. */
const SERVER_MODULES = [
  /^(store|api|broker|cli|web)\//,
  /^(main|core|serve)\.js$/,
  /^firmware\/(index|tuf-repository|tuf-service|tuf-http-handler|tuf-keys|campaign|campaign-service|firmware-key-service|ota-messages)\.js$/,
];

const work = tempDir("moat-module-graph-");
afterAll(() => work.cleanup());

const HOOKS = `
import { appendFileSync } from "node:fs";
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  appendFileSync(log, result.url + "\\n");
  return result;
}
`;

/** Every module (file path or builtin URL) that importing `specifiers` in a fresh node loads. */
async function loadedModules(specifiers: readonly string[], name: string): Promise<string[]> {
  const hooks = join(work.path, "hooks.mjs");
  writeFileSync(hooks, HOOKS);
  const log = join(work.path, `${name}.log`);
  writeFileSync(log, "");
  const register = join(work.path, `${name}-register.mjs`);
  writeFileSync(register, `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { log: ${JSON.stringify(log)} } });\n`);
  const script = `
    for (const specifier of JSON.parse(process.argv[1])) await import(specifier);
    const { createRequire } = await import("node:module");
    process.stdout.write(JSON.stringify(Object.keys(createRequire(process.cwd() + "/").cache)));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", pathToFileURL(register).href, "--input-type=module", "-e", script, JSON.stringify(specifiers)], {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  const esm = readFileSync(log, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((url) => (url.startsWith("file:") ? fileURLToPath(url) : url));
  return [...new Set([...esm, ...(JSON.parse(stdout) as string[])])];
}

/** The server packages and server modules among `modules`. */
function serverParts(modules: readonly string[]): { packages: string[]; files: string[] } {
  const packages = new Set<string>();
  const files = new Set<string>();
  const dist = join(REPO_ROOT, "dist") + "/";
  for (const module of modules) {
    const inPackage = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(module.slice(module.lastIndexOf("/node_modules/")));
    if (inPackage && SERVER_PACKAGES.includes(inPackage[1]!)) packages.add(inPackage[1]!);
    if (module.startsWith(dist) && SERVER_MODULES.some((pattern) => pattern.test(module.slice(dist.length)))) files.add(module.slice(dist.length));
  }
  return { packages: [...packages].sort(), files: [...files].sort() };
}

const built = existsSync(join(REPO_ROOT, "dist/device/index.js")) && existsSync(join(REPO_ROOT, "dist/firmware/verify.js"));

describe("the device side's module graph (built package, real loader)", () => {
  it("dist/ is built (npm test builds it before the tests)", () => {
    expect(built, "run `npm run build` first").toBe(true);
  });

  it.runIf(built)("moat/device loads the SDK, TUF client, E2E and verifier, and nothing of the server", async () => {
    const modules = await loadedModules(["moat/device"], "device");
    const dist = (file: string) => join(REPO_ROOT, "dist", file);
    // The export resolved through package.json to the built door, and the graph is the real one.
    expect(modules).toEqual(
      expect.arrayContaining([dist("device/index.js"), dist("device/ota-client.js"), dist("firmware/secure-boot-verifier.js"), dist("crypto/e2e-channel.js")]),
    );
    expect(modules.some((m) => m.includes("/node_modules/tuf-js/"))).toBe(true);
    expect(serverParts(modules)).toEqual({ packages: [], files: [] });
  });

  it.runIf(built)("moat/firmware/verify loads the secure-boot check alone: no server, no device SDK, no TUF client", async () => {
    const modules = await loadedModules(["moat/firmware/verify"], "verify");
    expect(modules).toContain(join(REPO_ROOT, "dist/firmware/secure-boot-verifier.js"));
    expect(serverParts(modules)).toEqual({ packages: [], files: [] });
    expect(modules.filter((m) => m.includes("/dist/device/") || m.includes("/node_modules/tuf-js/"))).toEqual([]);
  });

  it.runIf(built)("the check sees a server package or module when one is loaded (so the tests above can fail)", async () => {
    // pino is CommonJS and requires its own dependencies; the firmware door brings the server-side services.
    const modules = await loadedModules(["moat/firmware/verify", "pino", "./dist/firmware/index.js"], "control");
    const found = serverParts(modules);
    expect(found.packages).toEqual(["pino"]);
    expect(found.files).toEqual(expect.arrayContaining(["firmware/index.js", "firmware/tuf-repository.js", "firmware/campaign-service.js"]));
  });
});
