/**
 * The CLI loads what a command needs and nothing more: followed through the real module graph (a
 * resolve hook records every module the process loads, and the bundle's source maps name the
 * sources inside each chunk), not by package names.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMAND_GROUPS, commandNameOf } from "../../src/cli/program.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { REPO_ROOT } from "../helpers/cli.js";

const TRACE_HOOK = join(REPO_ROOT, "test/helpers/module-trace.mjs");

/** Runs the built CLI and returns the sources (files under src/ and node_modules/) it loaded. */
function loadedSources(args: string[]): { code: number | null; stdout: string; sources: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "moat-trace-"));
  const trace = join(dir, "modules.txt");
  try {
    const run = spawnSync(process.execPath, ["--import", TRACE_HOOK, join(REPO_ROOT, "dist/cli/bin.js"), ...args], {
      env: { ...process.env, MOAT_MODULE_TRACE: trace, MOAT_LOG_LEVEL: "silent" },
      encoding: "utf8",
    });
    const urls = existsSync(trace) ? [...new Set(readFileSync(trace, "utf8").split("\n").filter((u) => u.startsWith("file:")))] : [];
    const sources = new Set<string>();
    for (const url of urls) {
      const file = fileURLToPath(url);
      const map = `${file}.map`;
      // A bundle chunk stands for the sources its map lists; a plain module for itself.
      const inside = existsSync(map) ? (JSON.parse(readFileSync(map, "utf8")) as { sources: string[] }).sources.map((s) => join(file, "..", s)) : [file];
      for (const source of inside) sources.add(source.slice(REPO_ROOT.length));
    }
    return { code: run.status, stdout: run.stdout, sources: [...sources].sort() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const domainsOf = (sources: string[]) => [...new Set(sources.filter((s) => s.startsWith("src/")).map((s) => s.split("/")[1]!.replace(/\.ts$/, "")))].sort();
const packagesOf = (sources: string[]) => [...new Set(sources.filter((s) => s.includes("node_modules/")).map((s) => s.split("node_modules/").pop()!.split("/").slice(0, s.split("node_modules/").pop()!.startsWith("@") ? 2 : 1).join("/")))].sort();

describe("the CLI's command table", () => {
  it("registers, for every group in the table, the command the table names, with the same description", async () => {
    for (const group of COMMAND_GROUPS) {
      const program = new Command("moat");
      (await group.load()).register(program);
      const command = program.commands.find((c) => c.name() === group.name);
      expect([group.name, command?.description()]).toEqual([group.name, group.description]);
    }
  });

  it("finds the command name past global options and their values, and after `help`", () => {
    expect(commandNameOf(["--data-dir", "device", "cert", "list"])).toBe("cert");
    expect(commandNameOf(["--log-level", "debug", "device", "list"])).toBe("device");
    expect(commandNameOf(["help", "ota"])).toBe("ota");
    expect(commandNameOf(["--version"])).toBeUndefined();
  });
});

describe("what each command loads", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp("sqlite");
    await t.app.devices.create({ id: "sensor-1" }, "test");
  });
  afterAll(() => t.cleanup());

  it("moat --version and moat --help load no domain, only the command table and commander", () => {
    for (const flag of ["--version", "--help"]) {
      const run = loadedSources([flag]);
      expect(run.code).toBe(0);
      expect([flag, domainsOf(run.sources)]).toEqual([flag, ["cli", "errors", "lib"]]);
      // The release version lives in src/lib/version.ts (GET /v1/info advertises it too); nothing else of lib loads.
      expect(run.sources.filter((s) => s.startsWith("src/lib/"))).toEqual(["src/lib/version.ts"]);
      expect(run.sources.filter((s) => s.startsWith("src/cli/")).sort()).toEqual(["src/cli/bin.ts", "src/cli/program.ts"]);
      expect([flag, packagesOf(run.sources)]).toEqual([flag, ["commander"]]);
    }
  });

  it("moat --help lists every group; moat device --help shows the group's commands with an example", () => {
    const help = loadedSources(["--help"]).stdout;
    for (const group of COMMAND_GROUPS) expect(help).toContain(group.name);
    const device = loadedSources(["device", "--help"]);
    expect(device.code).toBe(0);
    expect(device.stdout).toMatch(/list \[options\]/);
    expect(device.stdout).toMatch(/decommission/);
    const list = loadedSources(["device", "list", "--help"]);
    expect(list.stdout).toContain("Example:\n  moat device list");
  });

  it("moat device list loads the core and the registry, and no PKI, policy, firmware, scanner, broker, API or server package", () => {
    const run = loadedSources([...t.cliArgs, "device", "list", "--json"]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).devices.map((d: { id: string }) => d.id)).toEqual(["sensor-1"]);
    const domains = domainsOf(run.sources);
    for (const absent of ["pki", "policy", "firmware", "scanner", "broker", "api", "serve", "network", "device"]) expect([absent, domains.includes(absent)]).toEqual([absent, false]);
    expect(domains).toEqual(expect.arrayContaining(["core", "store", "identity", "keys"]));
    const packages = packagesOf(run.sources);
    for (const absent of ["fastify", "aedes", "pino", "pg", "ioredis", "pkcs11js", "tuf-js", "@tufjs/models", "prom-client"]) expect([absent, packages.includes(absent)]).toEqual([absent, false]);
    expect(packages).toEqual(expect.arrayContaining(["better-sqlite3", "kysely"]));
  });

  it("a group loads the service modules it uses and not the others: moat cert list loads PKI, not firmware or the broker", () => {
    const run = loadedSources([...t.cliArgs, "cert", "list", "--json"]);
    expect(run.code).toBe(0);
    const domains = domainsOf(run.sources);
    expect(domains).toContain("pki");
    for (const absent of ["firmware", "scanner", "broker", "api", "serve"]) expect([absent, domains.includes(absent)]).toEqual([absent, false]);
  });
});
