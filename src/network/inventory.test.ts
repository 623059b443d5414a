import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EXAMPLE_POLICY_PATH } from "../../test/network-fixtures.js";
import { checkDevicePlacement, parseInventoryJson, type InventoryDevice } from "./inventory.js";
import { loadPolicy } from "./policy-load.js";

const policy = loadPolicy(readFileSync(EXAMPLE_POLICY_PATH, "utf8"));
const device = (id: string, attributes: Record<string, unknown>, lastSeenAddress: string | null): InventoryDevice => ({ id, attributes, lastSeenAddress });

describe("placing devices in VLANs", () => {
  it("flags devices seen outside their VLAN and explains every placement", () => {
    const results = checkDevicePlacement(policy, [
      device("s-ok", { vlan: "10" }, "192.168.10.20"),
      device("s-by-name", { vlan: "iot-gateways" }, "::ffff:192.168.20.7"),
      device("s-moved", { vlan: 10 }, "192.168.20.5"),
      device("s-unknown-vlan", { vlan: "99" }, "192.168.10.5"),
      device("s-new", { vlan: "30" }, null),
      device("s-by-address", {}, "192.168.30.44"),
      device("s-nowhere", {}, "172.16.0.9"),
      device("s-garbage", { vlan: "10" }, "not-an-ip"),
    ]);
    expect(results.map((r) => [r.id, r.vlan?.name ?? null, r.placedBy, r.status, r.flagged])).toEqual([
      ["s-ok", "iot-sensors", "attribute", "ok", false],
      ["s-by-name", "iot-gateways", "attribute", "ok", false],
      ["s-moved", "iot-sensors", "attribute", "outside-subnet", true],
      ["s-unknown-vlan", null, "attribute", "unknown-vlan", true],
      ["s-new", "iot-management", "attribute", "not-seen", false],
      ["s-by-address", "iot-management", "address", "ok", false],
      ["s-nowhere", null, null, "unplaced", true],
      ["s-garbage", "iot-sensors", "attribute", "outside-subnet", true],
    ]);
    expect(results[2]!.message).toBe("last seen at 192.168.20.5, outside VLAN iot-sensors (192.168.10.0/24)");
  });

  it("reads a JSON inventory and rejects malformed ones", () => {
    expect(parseInventoryJson('[{"id":"a","attributes":{"vlan":"10"},"lastSeenAddress":"192.168.10.1"},{"id":"b"}]')).toEqual([
      { id: "a", attributes: { vlan: "10" }, lastSeenAddress: "192.168.10.1" },
      { id: "b", attributes: {}, lastSeenAddress: null },
    ]);
    expect(parseInventoryJson('{"devices":[{"id":"a"}]}')).toHaveLength(1);
    for (const bad of ["{", '{"x":1}', '[{"attributes":{}}]', '[{"id":"a","attributes":[]}]', '[{"id":"a","lastSeenAddress":5}]'])
      expect(() => parseInventoryJson(bad), bad).toThrow(expect.objectContaining({ code: "NETWORK_INVENTORY_INVALID" }));
  });
});
