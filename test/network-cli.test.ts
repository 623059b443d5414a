import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { buildProgram } from "../src/cli/program.js";
import { tempDir } from "./helpers/temp.js";
import { EXAMPLE_POLICY_PATH, MUD_EXAMPLE_PATH, SEED_POLICY } from "./network-fixtures.js";

const example = EXAMPLE_POLICY_PATH.pathname;
const site = new URL("../examples/segmentation/mud-site.yml", import.meta.url).pathname;
const dir = tempDir("moat-segment-cli-");
afterAll(() => dir.cleanup());

let out = "";
let err = "";
beforeEach(() => {
  out = "";
  err = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => ((out += String(chunk)), true));
  vi.spyOn(process.stderr, "write").mockImplementation((chunk) => ((err += String(chunk)), true));
});
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

/** Runs `moat ARGS` in-process; returns the exit code the CLI would use (0, or 1 for errors). */
async function moat(...args: string[]): Promise<number> {
  process.exitCode = undefined;
  try {
    await (await buildProgram(args)).parseAsync(["node", "moat", ...args]);
    return Number(process.exitCode ?? 0);
  } catch (error) {
    err += `error ${(error as { code?: string }).code}: ${(error as Error).message}\n`;
    return 1;
  }
}

describe("moat segment", () => {
  it("validate: the seed fails (admin_network undefined) with file:line messages; the example passes", async () => {
    const seed = join(dir.path, "seed.yml");
    writeFileSync(seed, SEED_POLICY);
    expect(await moat("segment", "validate", seed)).toBe(1);
    expect(out).toContain(`${seed}:19: error [unknown-network] from unknown network "admin_network"`);
    expect(out).toMatch(/INVALID: 3 VLAN\(s\), 2 error\(s\), 2 warning\(s\)/);
    out = "";
    expect(await moat("segment", "validate", example, "--json")).toBe(0);
    const report = JSON.parse(out);
    expect(report).toMatchObject({ valid: true, errors: 0, warnings: 2 });
    expect(report.diagnostics[0]).toMatchObject({ severity: "warning", kind: "plaintext-service", line: 16 });
  });

  it("check: allow or deny with the deciding rule", async () => {
    expect(await moat("segment", "check", example, "--from", "192.168.10.5", "--to", "192.168.40.10", "--port", "8883")).toBe(0);
    expect(out).toMatch(/^ALLOW 192\.168\.10\.5 -> 192\.168\.40\.10:8883\/tcp: allowed by VLAN iot-sensors egress rule 1 "allow: mqtt \(1883, 8883\)" \(line 16\)/);
    out = "";
    await moat("segment", "check", example, "--from", "192.168.10.5", "--to", "192.168.20.10", "--port", "22", "--json");
    expect(JSON.parse(out)).toMatchObject({ decision: "deny", decidingRule: { vlan: "iot-sensors", index: 3, line: 18, text: "deny: all" } });
    expect(await moat("segment", "check", example, "--from", "192.168.10.5", "--to", "192.168.20.10", "--port", "99999")).toBe(1);
    expect(err).toContain("error NETWORK_FLOW_INVALID");
  });

  it("matrix: grid, list and JSON", async () => {
    await moat("segment", "matrix", example);
    expect(out.split("\n")[0]).toMatch(/^from \\ to/);
    out = "";
    await moat("segment", "matrix", example, "--list");
    expect(out).toContain("admin_network -> iot-gateways: tcp 22(ssh)\n");
    out = "";
    await moat("segment", "matrix", example, "--json");
    expect(JSON.parse(out).endpoints).toHaveLength(6);
  });

  it("compile: the same bytes twice, written atomically; refuses invalid policies and unknown targets", async () => {
    const a = join(dir.path, "a.nft");
    const b = join(dir.path, "b.nft");
    expect(await moat("segment", "compile", example, "--target", "nftables", "--out", a)).toBe(0);
    expect(await moat("segment", "compile", example, "--out", b)).toBe(0);
    expect(readFileSync(a)).toEqual(readFileSync(b));
    expect(readFileSync(a, "utf8")).toContain("table inet moat_segmentation {");
    const seed = join(dir.path, "seed2.yml");
    writeFileSync(seed, SEED_POLICY);
    const c = join(dir.path, "c.nft");
    expect(await moat("segment", "compile", seed, "--out", c)).toBe(1);
    expect(err).toContain(`error NETWORK_POLICY_INVALID: ${seed}:19:`);
    expect(() => readFileSync(c)).toThrow();
    expect(await moat("segment", "compile", example, "--target", "iptables")).toBe(1);
    expect(err).toContain("error NETWORK_TARGET_UNSUPPORTED");
    expect(await moat("segment", "compile", join(dir.path, "missing.yml"))).toBe(1);
    expect(err).toContain("error NETWORK_FILE_ACCESS");
  });

  it("mud import: a rules block, JSON, and the rules written into the group's VLAN", async () => {
    expect(await moat("segment", "mud", "import", MUD_EXAMPLE_PATH.pathname, "--group", "thermostats")).toBe(0);
    expect(out).toContain("firewall_rules:\n");
    expect(err).toContain('warning: $["ietf-access-control-list:acls"].acl[0].aces.ace[2]');
    out = "";
    await moat("segment", "mud", "import", MUD_EXAMPLE_PATH.pathname, "--group", "thermostats", "--json");
    expect(JSON.parse(out)).toMatchObject({ group: "thermostats", rules: expect.any(Array), warnings: [expect.any(Object)] });
    const written = join(dir.path, "site.yml");
    expect(await moat("segment", "mud", "import", MUD_EXAMPLE_PATH.pathname, "--group", "thermostats", "--policy", site, "--out", written)).toBe(0);
    out = "";
    expect(await moat("segment", "check", written, "--from", "192.168.50.9", "--to", "192.168.40.10", "--port", "8883", "--json")).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ decision: "allow", decidingRule: { vlan: "thermostats", text: expect.stringContaining("broker.example.com") } });
    const bad = join(dir.path, "bad.json");
    writeFileSync(bad, '{"ietf-mud:mud": {"mud-version": 3}}');
    expect(await moat("segment", "mud", "import", bad, "--group", "g")).toBe(1);
    expect(err).toContain('error NETWORK_MUD_INVALID: $["ietf-mud:mud"]["mud-version"]: must be 1');
  });

  it("devices: from a JSON inventory, flagging devices outside their subnet", async () => {
    const inventory = join(dir.path, "inventory.json");
    writeFileSync(inventory, JSON.stringify([
      { id: "s1", attributes: { vlan: "10" }, lastSeenAddress: "192.168.10.3" },
      { id: "s2", attributes: { vlan: "iot-sensors" }, lastSeenAddress: "192.168.30.3" },
    ]));
    await moat("segment", "devices", example, "--inventory", inventory, "--json");
    expect(JSON.parse(out)).toMatchObject({ flagged: 1, devices: [{ id: "s1", status: "ok" }, { id: "s2", status: "outside-subnet", flagged: true }] });
  });

  it("devices: from the device registry (withApp)", async () => {
    const data = join(dir.path, "data");
    expect(await moat("--data-dir", data, "init", "--trust-domain", "segment.test")).toBe(0);
    expect(await moat("--data-dir", data, "device", "add", "cam-1", "--attr", "vlan=20")).toBe(0);
    expect(await moat("--data-dir", data, "device", "add", "cam-2")).toBe(0);
    out = "";
    expect(await moat("--data-dir", data, "segment", "devices", example, "--json")).toBe(0);
    expect(JSON.parse(out)).toEqual({
      flagged: 1,
      devices: [
        expect.objectContaining({ id: "cam-1", vlan: { id: 20, name: "iot-gateways", subnet: "192.168.20.0/24" }, placedBy: "attribute", status: "not-seen" }),
        expect.objectContaining({ id: "cam-2", status: "unplaced", flagged: true }),
      ],
    });
  });

  it("every subcommand's --help shows an example", async () => {
    const segment = (await buildProgram(["segment"])).commands.find((c) => c.name() === "segment")!;
    const all: Command[] = [segment, ...segment.commands.flatMap((c) => [c, ...c.commands])];
    expect(all.map((c) => c.name()).sort()).toEqual(["check", "compile", "devices", "import", "matrix", "mud", "segment", "validate"]);
    for (const command of all) {
      let help = "";
      command.configureOutput({ writeOut: (s) => (help += s) });
      command.outputHelp();
      expect([command.name(), /Examples?:\n {2}moat segment /.test(help)]).toEqual([command.name(), true]);
    }
  });

  it("the installed entry point exits 1 on an invalid policy", () => {
    const bin = new URL("../src/cli/bin.ts", import.meta.url).pathname;
    const seed = join(dir.path, "seed3.yml");
    writeFileSync(seed, SEED_POLICY);
    const invalid = spawnSync(process.execPath, ["--import", "tsx", bin, "segment", "validate", seed], { encoding: "utf8" });
    expect(invalid.stdout).toContain("INVALID: 3 VLAN(s), 2 error(s)");
    expect(invalid.status).toBe(1);
  });
});
