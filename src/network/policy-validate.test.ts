import { describe, expect, it } from "vitest";
import { isMoatError } from "../errors.js";
import type { Diagnostic } from "./policy-model.js";
import { analyzePolicy, loadPolicy } from "./policy-load.js";
import { SEED_POLICY } from "../../test/network-fixtures.js";

const NETWORKS = "networks:\n  admin_network: 10.0.0.0/24\n  broker: 192.168.40.10/32\n  guests: 172.20.0.0/16\n";

/** A policy with the standard networks (lines 1-4) and VLANs written after them, starting on line 5. */
function policy(vlans: string): string {
  return `${NETWORKS}vlans:\n${vlans}`;
}

function vlan(id: number | string, name: string, subnet: string, rules: string[]): string {
  return [`  - id: ${id}`, `    name: ${name}`, `    subnet: ${subnet}`, `    firewall_rules:`, ...rules.map((r) => `      - ${r}`)].join("\n") + "\n";
}

function findings(text: string, kind: string): Pick<Diagnostic, "severity" | "line">[] {
  return analyzePolicy(text).diagnostics.filter((d) => d.kind === kind).map(({ severity, line }) => ({ severity, line }));
}

describe("validating a policy", () => {
  it("the seed as written fails only because admin_network is not defined", () => {
    const analysis = analyzePolicy(SEED_POLICY);
    expect(analysis.valid).toBe(false);
    expect(analysis.diagnostics.filter((d) => d.severity === "error")).toEqual([
      expect.objectContaining({ kind: "unknown-network", line: 19, message: expect.stringContaining('"admin_network"') }),
      expect.objectContaining({ kind: "unknown-network", line: 26 }),
    ]);
    // Plaintext MQTT (1883) is allowed for sensors and gateways.
    expect(findings(SEED_POLICY, "plaintext-service")).toEqual([{ severity: "warning", line: 9 }, { severity: "warning", line: 17 }]);
  });

  it("the seed with admin_network defined is valid and has no other finding", () => {
    const text = SEED_POLICY.replace("vlans:\n", "networks:\n  admin_network: 10.0.0.0/24\nvlans:\n");
    const analysis = analyzePolicy(text);
    expect(analysis.valid).toBe(true);
    expect(analysis.diagnostics.map((d) => d.kind)).toEqual(["plaintext-service", "plaintext-service"]);
  });

  it("VLAN id outside 1-4094", () => {
    const text = policy(vlan(0, "a", "192.168.1.0/24", ["deny: all"]) + vlan(4095, "b", "192.168.2.0/24", ["deny: all"]));
    expect(findings(text, "vlan-id-range")).toEqual([{ severity: "error", line: 6 }, { severity: "error", line: 11 }]);
  });

  it("duplicated VLAN id and name", () => {
    const text = policy(vlan(7, "a", "192.168.1.0/24", ["deny: all"]) + vlan(7, "b", "192.168.2.0/24", ["deny: all"]) + vlan(8, "a", "192.168.3.0/24", ["deny: all"]));
    expect(findings(text, "vlan-id-duplicate")).toEqual([{ severity: "error", line: 11 }]);
    expect(findings(text, "vlan-name-duplicate")).toEqual([{ severity: "error", line: 16 }]);
  });

  it("a VLAN named like a network is ambiguous", () => {
    expect(findings(policy(vlan(7, "broker", "192.168.1.0/24", ["deny: all"])), "name-ambiguous")).toEqual([{ severity: "error", line: 6 }]);
  });

  it("overlapping subnets, reported on the later VLAN", () => {
    const text = policy(
      vlan(1, "wide", "192.168.0.0/16", ["deny: all"]) + vlan(2, "other", "10.9.0.0/24", ["deny: all"]) + vlan(3, "inside", "192.168.7.0/24", ["deny: all"]),
    );
    const [overlap] = analyzePolicy(text).diagnostics.filter((d) => d.kind === "subnet-overlap");
    expect(overlap).toMatchObject({ severity: "error", line: 16, message: expect.stringContaining("192.168.0.0/16") });
    expect(findings(policy(vlan(1, "a", "192.168.1.0/24", ["deny: all"]) + vlan(2, "b", "192.168.2.0/24", ["deny: all"])), "subnet-overlap")).toEqual([]);
  });

  it("unknown network names in from and to", () => {
    const text = policy(vlan(1, "a", "192.168.1.0/24", ["allow: ssh (22) from jump_hosts", "allow: https (443) to cloud", "deny: all"]));
    expect(findings(text, "unknown-network")).toEqual([{ severity: "error", line: 10 }, { severity: "error", line: 11 }]);
  });

  it("a rule shadowed by an earlier one: error when the action differs, warning when redundant", () => {
    const text = policy(
      vlan(1, "a", "192.168.1.0/24", [
        "allow: mqtt (1883, 8883)",
        "deny: mqtt (8883)",
        "allow: (8883) to broker",
        "allow: ssh (22) from admin_network",
        "deny: ssh (22) from 10.0.0.5",
        "deny: all",
        "deny: https (443)",
      ]),
    );
    expect(findings(text, "rule-shadowed")).toEqual([{ severity: "error", line: 11 }, { severity: "error", line: 14 }]);
    expect(findings(text, "rule-redundant")).toEqual([{ severity: "warning", line: 12 }, { severity: "warning", line: 16 }]);
  });

  it("rules for different directions or protocols do not shadow each other", () => {
    const text = policy(
      vlan(1, "a", "192.168.1.0/24", ["allow: all from admin_network", "{action: allow, service: dns, proto: udp}", "{action: deny, ports: [53], proto: tcp}", "deny: all"]),
    );
    expect(analyzePolicy(text).diagnostics.filter((d) => d.kind.startsWith("rule-"))).toEqual([]);
  });

  it("no final deny, and no rules at all", () => {
    const text = policy(vlan(1, "a", "192.168.1.0/24", ["allow: https (443)"]) + "  - id: 2\n    name: b\n    subnet: 192.168.2.0/24\n");
    expect(findings(text, "no-final-deny")).toEqual([{ severity: "warning", line: 6 }]);
    expect(findings(text, "no-rules")).toEqual([{ severity: "warning", line: 11 }]);
  });

  it("plaintext services: MQTT 1883, Telnet 23, FTP 21, HTTP 80", () => {
    const text = policy(
      vlan(1, "a", "192.168.1.0/24", ["allow: (1883)", "allow: telnet", "allow: ftp", "allow: (80-90)", "allow: https (443)", "{action: allow, ports: [80], proto: udp}", "deny: (23)", "deny: all"]),
    );
    expect(findings(text, "plaintext-service").map((f) => f.line)).toEqual([10, 11, 12, 13]);
  });

  it("allow: all from a non-management network, and from a non-management VLAN's own hosts", () => {
    const text = policy(
      vlan(1, "a", "192.168.1.0/24", ["allow: all from guests", "allow: all from admin_network", "allow: all from 10.0.0.7", "allow: all", "deny: all"]) +
        vlan(2, "mgmt", "192.168.2.0/24", ["allow: all", "deny: all"]),
    );
    expect(findings(text, "allow-all-non-management")).toEqual([{ severity: "warning", line: 10 }, { severity: "warning", line: 13 }]);
  });

  it("SSH open to more than the admin network", () => {
    const text = policy(
      vlan(1, "a", "192.168.1.0/24", ["allow: ssh (22) from admin_network", "allow: ssh (22) from guests", "allow: (20-30) from any", "allow: ssh to broker", "deny: all"]),
    );
    expect(findings(text, "ssh-exposed")).toEqual([{ severity: "warning", line: 11 }, { severity: "warning", line: 12 }]);
  });

  it("an ingress rule whose target lies outside the VLAN", () => {
    const text = policy(vlan(1, "a", "192.168.1.0/24", ["{action: allow, ports: [8883], from: admin_network, to: broker}", "deny: all"]));
    expect(findings(text, "rule-target-outside")).toEqual([{ severity: "error", line: 10 }]);
  });

  it("loadPolicy refuses a policy with errors, naming the first line", () => {
    try {
      loadPolicy(SEED_POLICY, "seed.yml");
      expect.unreachable();
    } catch (error) {
      expect(isMoatError(error, "NETWORK_POLICY_INVALID")).toBe(true);
      expect((error as Error).message).toMatch(/^seed\.yml:19: /);
      expect((error as { detail: { errors: unknown[] } }).detail.errors).toHaveLength(2);
    }
  });
});
