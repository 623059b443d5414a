import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compileNftables, importMud, loadPolicy, writeMudIntoPolicy } from "../src/network/index.js";
import { hasCommand, IS_ROOT, requirement } from "./helpers/requirements.js";
import { tempDir } from "./helpers/temp.js";
import { EXAMPLE_POLICY_PATH, MUD_EXAMPLE_PATH } from "./network-fixtures.js";

// `nft -c` asks the kernel to check the ruleset without committing it; that needs CAP_NET_ADMIN.
const ok = requirement("nft -c (nftables, as root)", IS_ROOT && hasCommand("nft"), "install nftables (apt-get install -y nftables) and run as root, as CI does");

/** A synthetic policy with every rule shape the compiler writes. */
function generatedPolicy(vlans: number): string {
  const lines = ["networks:", "  admin_network: {subnet: 10.0.0.0/24, management: true}", "  broker: [192.168.250.10, 192.168.251.0/24]", "vlans:"];
  for (let i = 1; i <= vlans; i++) {
    lines.push(`  - id: ${i}`, `    name: vlan-${i}`, `    subnet: 172.${16 + (i >> 8)}.${i & 255}.0/24`, "    firewall_rules:");
    lines.push("      - allow: mqtt (8883) to broker", "      - {action: allow, service: ntp, to: 192.168.250.0/24}", "      - {action: allow, ports: [53, '5000-5010'], proto: any}");
    lines.push("      - allow: ssh (22) from admin_network", `      - {action: allow, ports: [9000], from: vlan-${i === 1 ? vlans : i - 1}, to: 172.${16 + (i >> 8)}.${i & 255}.7}`);
    lines.push("      - deny: all");
  }
  return lines.join("\n") + "\n";
}

describe.skipIf(!ok)("compiled rulesets pass nft -c -f", () => {
  const dir = tempDir("moat-nft-");
  afterAll(() => dir.cleanup());

  const check = (name: string, script: string) => {
    const path = join(dir.path, name);
    writeFileSync(path, script);
    return spawnSync("nft", ["-c", "-f", path], { encoding: "utf8" });
  };

  it("the example policy", () => {
    const result = check("example.nft", compileNftables(loadPolicy(readFileSync(EXAMPLE_POLICY_PATH, "utf8"))));
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it("a policy written by a MUD import", () => {
    const site = readFileSync(new URL("../examples/segmentation/mud-site.yml", import.meta.url), "utf8");
    const written = writeMudIntoPolicy(site, importMud(readFileSync(MUD_EXAMPLE_PATH, "utf8"), "thermostats"));
    const result = check("mud.nft", compileNftables(loadPolicy(written)));
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it("a generated policy with every rule shape (UDP, any-protocol ports, ranges, literals, VLAN peers)", () => {
    const result = check("generated.nft", compileNftables(loadPolicy(generatedPolicy(40))));
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it("nft -c does reject a broken script (the check is real)", () => {
    const broken = compileNftables(loadPolicy(readFileSync(EXAMPLE_POLICY_PATH, "utf8"))).replace("tcp dport 443", "tcp dport 443 bogus");
    const result = check("broken.nft", broken);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/syntax error/i);
  });

  it("nothing was loaded into this namespace's ruleset", () => {
    expect(execFileSync("nft", ["list", "tables"], { encoding: "utf8" })).not.toContain("moat_segmentation");
  });
});
