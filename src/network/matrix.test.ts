import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EXAMPLE_POLICY_PATH } from "../../test/network-fixtures.js";
import { buildMatrix, describeCell, formatMatrix, formatMatrixGrid } from "./matrix.js";
import { loadPolicy } from "./policy-load.js";
import { FlowSimulator } from "./simulate.js";
import { parseIpv4 } from "./address.js";

const policy = loadPolicy(readFileSync(EXAMPLE_POLICY_PATH, "utf8"));
const matrix = buildMatrix(policy);
const cell = (from: string, to: string) => describeCell(matrix.cells.find((c) => c.from === from && c.to === to)!);

describe("the reachability matrix", () => {
  it("lists VLANs, networks and everything else", () => {
    expect(matrix.endpoints.map((e) => e.name)).toEqual(["iot-sensors", "iot-gateways", "iot-management", "admin_network", "broker", "other"]);
  });

  it("shows which VLAN may reach which on which services", () => {
    expect(cell("iot-sensors", "broker")).toBe("tcp 443(https),1883(mqtt),8883(mqtt)");
    expect(cell("iot-sensors", "other")).toBe("tcp 443(https),1883(mqtt),8883(mqtt)");
    expect(cell("iot-sensors", "iot-gateways")).toBe("-");
    expect(cell("admin_network", "iot-gateways")).toBe("tcp 22(ssh)");
    expect(cell("admin_network", "iot-management")).toBe("all");
    expect(cell("iot-management", "admin_network")).toBe("-");
    expect(cell("broker", "other")).toBe("-");
  });

  it("agrees with the simulator on sampled flows", () => {
    const sim = new FlowSimulator(policy);
    const hosts: Record<string, string> = { "iot-sensors": "192.168.10.9", "iot-gateways": "192.168.20.9", "iot-management": "192.168.30.9", admin_network: "10.0.0.9", broker: "192.168.40.10", other: "203.0.113.9" };
    for (const c of matrix.cells)
      for (const port of [22, 443, 1883, 8883, 9999]) {
        const expected = c.all || c.allowed.tcp.some((r) => r.from <= port && port <= r.to);
        const decision = sim.decide({ src: parseIpv4(hosts[c.from]!)!, dst: parseIpv4(hosts[c.to]!)!, port, proto: "tcp" }).decision;
        expect([c.from, c.to, port, decision]).toEqual([c.from, c.to, port, expected ? "allow" : "deny"]);
      }
  });

  it("marks ports that only some hosts get", () => {
    const partial = buildMatrix(
      loadPolicy("networks:\n  admin_network: 10.0.0.0/24\nvlans:\n  - id: 1\n    name: a\n    subnet: 192.168.1.0/24\n    firewall_rules:\n      - {action: allow, service: ssh, from: 10.0.0.5}\n      - deny: all\n"),
    );
    expect(describeCell(partial.cells.find((c) => c.from === "admin_network" && c.to === "a")!)).toBe("some hosts: tcp 22(ssh)");
  });

  it("renders as a grid and as a list", () => {
    expect(formatMatrixGrid(matrix).split("\n")[0]).toMatch(/^from \\ to +\| iot-sensors +\| iot-gateways/);
    expect(formatMatrix(matrix)).toContain("admin_network -> iot-management: all\n");
  });
});
