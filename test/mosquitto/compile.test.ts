/**
 * The pure parts of the Mosquitto data plane: Moat's rules compiled to dynsec ACLs, the commands between
 * two states (narrowing first), and Mosquitto's log lines read as facts.
 */
import { describe, expect, it } from "vitest";
import { compileDeviceAcls } from "../../src/mosquitto/acl.js";
import { aclChanges, transition } from "../../src/mosquitto/desired.js";
import { parseLogLine } from "../../src/mosquitto/log-lines.js";
import type { Rule } from "../../src/policy/index.js";

const rule = (effect: "allow" | "deny", action: string, resource: string): { rule: Rule } => ({ rule: { effect, action, resource } });

describe("compileDeviceAcls", () => {
  const subject = { id: "d1", group: "g1", status: "active", attributes: { room: "r7", bad: "#" }, certCn: "d1" };

  it("expands variables per device, puts denies above allows and leaves out rules with unsafe values", () => {
    const acls = compileDeviceAcls(
      [
        rule("allow", "publish", "devices/${device.id}/telemetry/#"),
        rule("allow", "subscribe", "rooms/${device.attr.room}/#"),
        rule("allow", "subscribe", "rooms/${device.attr.bad}/#"),
        rule("allow", "receive", "groups/${device.group}/+"),
        rule("deny", "subscribe", "rooms/+/secret/#"),
        rule("allow", "devices:read", "*"),
      ],
      subject,
    );
    expect(acls).toEqual([
      { acltype: "publishClientReceive", topic: "groups/g1/+", priority: 0, allow: true },
      // A subscribe deny also withholds delivery (a dynsec deny pattern cannot refuse a request it only overlaps).
      { acltype: "publishClientReceive", topic: "rooms/+/secret/#", priority: 10, allow: false },
      { acltype: "publishClientSend", topic: "devices/d1/telemetry/#", priority: 0, allow: true },
      { acltype: "subscribePattern", topic: "rooms/+/secret/#", priority: 10, allow: false },
      { acltype: "subscribePattern", topic: "rooms/r7/#", priority: 0, allow: true },
    ]);
  });

  it("keeps the deny where an allow and a deny name the same filter", () => {
    expect(compileDeviceAcls([rule("allow", "publish", "a/#"), rule("deny", "publish", "a/#"), rule("allow", "publish", "a/#")], subject)).toEqual([
      { acltype: "publishClientSend", topic: "a/#", priority: 10, allow: false },
    ]);
  });
});

describe("transition", () => {
  const acl = (topic: string, allow = true) => ({ acltype: "publishClientSend" as const, topic, priority: allow ? 0 : 10, allow });

  it("disables before anything else when a device may no longer connect", () => {
    const commands = transition("d1", { deviceId: "d1", enabled: true, acls: [acl("a")] }, { deviceId: "d1", enabled: false, acls: [] });
    expect(commands.map((c) => c.command)).toEqual(["disableClient", "removeClientRole", "deleteRole"]);
  });

  it("removes allows and adds denies before it adds allows", () => {
    const commands = aclChanges("r", [acl("old"), acl("gone", false)], [acl("new"), acl("x", false)]);
    expect(commands.map((c) => `${c.command} ${String(c.topic)}`)).toEqual(["removeRoleACL old", "addRoleACL x", "addRoleACL new", "removeRoleACL gone"]);
  });

  it("creates a disabled client for a device that may not connect, and nothing for no change", () => {
    expect(transition("d2", null, { deviceId: "d2", enabled: false, acls: [] }).map((c) => c.command)).toEqual(["createClient", "disableClient"]);
    expect(transition("d2", { deviceId: "d2", enabled: true, acls: [acl("a")] }, { deviceId: "d2", enabled: true, acls: [acl("a")] })).toEqual([]);
  });
});

describe("parseLogLine", () => {
  it("reads connects, disconnects, TLS failures and reloads as Mosquitto 2.0 writes them", () => {
    expect(parseLogLine("New client connected from 127.0.0.1:53898 as d1 (p5, c1, k60, u'd1').")).toEqual({
      kind: "connected",
      address: "127.0.0.1",
      port: 53898,
      clientId: "d1",
      protocol: 5,
      username: "d1",
    });
    expect(parseLogLine("New connection from ::1:40000 on port 8883.")).toEqual({ kind: "connection", address: "::1", port: 40000 });
    expect(parseLogLine("Client d1 been disconnected by administrative action.")).toEqual({ kind: "disconnected", clientId: "d1", reason: "administrative" });
    expect(parseLogLine("Client d2 disconnected.")).toEqual({ kind: "disconnected", clientId: "d2", reason: "client" });
    expect(parseLogLine("OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed")).toEqual({ kind: "tls_failed", reason: "certificate verify failed" });
    expect(parseLogLine("Reloading config.")).toEqual({ kind: "reloading" });
    expect(parseLogLine("mosquitto version 2.0.11 running")).toEqual({ kind: "other" });
  });
});
