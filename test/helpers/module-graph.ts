/**
 * The real module graph of the built package: a child node imports the given specifiers with a
 * module.register resolve hook that records every module the ES loader resolves, and the CommonJS
 * cache adds what CommonJS packages require() (those calls do not pass through the ES hooks on Node 20).
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { REPO_ROOT } from "./cli.js";
import { tempDir } from "./temp.js";

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

/** Every module (file path or builtin URL) that importing `specifiers` (resolved from the repository root) in a fresh node loads. */
export async function loadedModules(specifiers: readonly string[]): Promise<string[]> {
  const work = tempDir("moat-module-graph-");
  try {
    const hooks = join(work.path, "hooks.mjs");
    writeFileSync(hooks, HOOKS);
    const log = join(work.path, "resolved.log");
    writeFileSync(log, "");
    const register = join(work.path, "register.mjs");
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
  } finally {
    work.cleanup();
  }
}

/** The npm packages among `modules` (by the innermost node_modules folder), sorted. */
export function packagesOf(modules: readonly string[]): string[] {
  const packages = new Set<string>();
  for (const module of modules) {
    const inPackage = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(module.slice(module.lastIndexOf("/node_modules/")));
    if (inPackage) packages.add(inPackage[1]!);
  }
  return [...packages].sort();
}

/** The built modules among `modules`, as paths relative to dist/, sorted. */
export function builtModulesOf(modules: readonly string[]): string[] {
  const dist = join(REPO_ROOT, "dist") + "/";
  return modules.filter((m) => m.startsWith(dist)).map((m) => m.slice(dist.length)).sort();
}
