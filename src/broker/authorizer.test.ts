/**
 * Every publish, subscribe and delivery decision of the authorizer, without a broker: the real policy
 * engine with the built-in roles and a few custom ones, subjects built from directory records as the
 * authenticator builds them (registry role included), and the events and close causes that follow.
 * test/broker/authorization.test.ts runs the same hooks under aedes with MQTT clients.
 */
import type { AedesPublishPacket, PublishPacket, Subscription } from "aedes";
import { beforeEach, describe, expect, it } from "vitest";
import { PolicyHolder } from "../../test/broker/helpers/harness.js";
import { openTestSession } from "../../test/broker/helpers/session.js";
import { isDeviceId } from "../identity/index.js";
import { BUILTIN_ROLES, type RoleDefinition } from "../policy/index.js";
import { Authorizer } from "./authorizer.js";
import { InMemoryDeviceDirectory } from "./memory-directory.js";
import { createBrokerMetrics } from "./metrics.js";
import type { BrokerEvent, DeviceRecord } from "./ports.js";
import { SessionRegistry, type Session } from "./session.js";
import { resolveBrokerSettings, type BrokerSettings } from "./settings.js";

const SENSOR_READER: RoleDefinition = {
  name: "sensor-reader",
  rules: [
    { effect: "allow", action: "subscribe", resource: "sensors/+/temp" },
    { effect: "allow", action: "receive", resource: "sensors/+/temp" },
  ],
};
const COMMANDER: RoleDefinition = {
  name: "commander",
  rules: [
    { effect: "allow", action: "publish", resource: "devices/+/commands/#" },
    { effect: "deny", action: "publish", resource: "devices/+/commands/firmware" },
  ],
};

function packet(topic: string, payload = "x", retain = false): PublishPacket & AedesPublishPacket {
  return { cmd: "publish", topic, payload: Buffer.from(payload), qos: 0, retain, dup: false } as PublishPacket & AedesPublishPacket;
}

describe("broker: authorizer", () => {
  let sessions: SessionRegistry;
  let directory: InMemoryDeviceDirectory;
  let events: BrokerEvent[];
  let touched: string[];

  function authorizer(settings: Partial<BrokerSettings> = {}, policy = new PolicyHolder([...BUILTIN_ROLES, SENSOR_READER, COMMANDER])): Authorizer {
    return new Authorizer({
      sessions,
      decider: policy,
      directory,
      settings: resolveBrokerSettings({ maxPublishDenials: 3, ...settings }),
      metrics: createBrokerMetrics(() => sessions.size),
      emit: (event) => void events.push(event),
      touch: (session) => void touched.push(session.deviceId),
    });
  }

  function device(id: string, over: Partial<DeviceRecord> = {}): DeviceRecord {
    return directory.put({ id, role: "device", ...over });
  }

  /** authorizePublish as a promise: the error aedes would get, and whether the packet was dropped. */
  function publish(auth: Authorizer, session: Session | null, topic: string, payload = "x"): Promise<{ error: string | null; dropped: boolean }> {
    const p = packet(topic, payload);
    if (session === null) (p as PublishPacket & { clientId?: string }).clientId = "d1";
    return new Promise((resolve) =>
      auth.authorizePublish(session?.client ?? null, p, (error) => resolve({ error: error ? error.message : null, dropped: auth.dropped.has(p) })),
    );
  }

  function subscribe(auth: Authorizer, session: Session, topic: string): Promise<Subscription | null | undefined> {
    return new Promise((resolve) => auth.authorizeSubscribe(session.client, { topic, qos: 0 }, (_error, granted) => resolve(granted)));
  }

  beforeEach(() => {
    sessions = new SessionRegistry();
    directory = new InMemoryDeviceDirectory(isDeviceId);
    events = [];
    touched = [];
  });

  it("lets a device publish what its registry role allows, and records the activity", async () => {
    const auth = authorizer();
    const session = openTestSession(sessions, device("d1"));
    expect(await publish(auth, session, "devices/d1/telemetry/temp")).toEqual({ error: null, dropped: false });
    expect(await publish(auth, session, "devices/d1/status")).toEqual({ error: null, dropped: false });
    expect(touched).toEqual(["d1", "d1"]);
    expect(events).toEqual([]);
  });

  it("acknowledges and drops a denied publish, reports the deciding rule, and closes after the denial limit", async () => {
    const auth = authorizer();
    const session = openTestSession(sessions, device("d1"));
    expect(await publish(auth, session, "devices/d2/telemetry/temp")).toEqual({ error: null, dropped: true });
    expect(events[0]).toMatchObject({ type: "acl.denied", subject: "d1", data: { action: "publish", topic: "devices/d2/telemetry/temp", reason: "policy", decision: "no-matching-rule", denials: 1 } });
    expect(await publish(auth, session, "devices/d2/telemetry/temp")).toEqual({ error: null, dropped: true });
    expect(session.closeCause).toBeNull();
    expect(await publish(auth, session, "devices/d2/telemetry/temp")).toMatchObject({ error: "publish_denied" });
    expect(session.closeCause).toBe("publish_denied");
    expect(touched).toEqual([]);
  });

  it("names an explicit deny as the deciding rule", async () => {
    const auth = authorizer();
    const session = openTestSession(sessions, device("ops", { role: "commander" }));
    expect(await publish(auth, session, "devices/d1/commands/reboot")).toEqual({ error: null, dropped: false });
    expect(await publish(auth, session, "devices/d1/commands/firmware")).toEqual({ error: null, dropped: true });
    expect(events[0]?.data).toMatchObject({ role: "commander", rule: "deny publish:devices/+/commands/firmware" });
  });

  it("refuses reserved topics and oversized payloads by closing the connection with the cause", async () => {
    const auth = authorizer({ maxPayloadBytes: 16 });
    const reserved = openTestSession(sessions, device("d1"));
    expect(await publish(auth, reserved, "$SYS/broker/clients")).toMatchObject({ error: "reserved_topic" });
    expect(reserved.closeCause).toBe("reserved_topic");
    const big = openTestSession(sessions, device("d2"));
    expect(await publish(auth, big, "devices/d2/telemetry/t", "x".repeat(17))).toMatchObject({ error: "payload_too_large" });
    expect(big.closeCause).toBe("payload_too_large");
    expect(events.map((e) => [e.type, e.data?.reason ?? e.data?.limit])).toEqual([
      ["acl.denied", "reserved_topic"],
      ["broker.limit_exceeded", "payload_size"],
    ]);
  });

  it("drops publishes over the rate and closes a client that keeps pushing", async () => {
    const auth = authorizer({ rateDropsBeforeDisconnect: 3 });
    const frozen = Date.now();
    const session = openTestSession(sessions, device("d1"), { messagesPerSecond: 2, now: () => frozen });
    const topic = "devices/d1/telemetry/t";
    expect(await publish(auth, session, topic)).toEqual({ error: null, dropped: false });
    expect(await publish(auth, session, topic)).toEqual({ error: null, dropped: false });
    expect(await publish(auth, session, topic)).toEqual({ error: null, dropped: true });
    expect(await publish(auth, session, topic)).toEqual({ error: null, dropped: true });
    expect(await publish(auth, session, topic)).toMatchObject({ error: "message_rate" });
    expect(events.at(-1)).toMatchObject({ type: "broker.limit_exceeded", data: { limit: "message_rate", dropped: 3 } });
  });

  it("grants a subscription the role covers and refuses a wider filter or a reserved one, keeping the connection", async () => {
    const auth = authorizer();
    const session = openTestSession(sessions, device("d1"));
    expect(await subscribe(auth, session, "devices/d1/commands/#")).toEqual({ topic: "devices/d1/commands/#", qos: 0 });
    expect(await subscribe(auth, session, "devices/+/commands/#")).toBeNull();
    expect(await subscribe(auth, session, "#")).toBeNull();
    expect(await subscribe(auth, session, "$SYS/#")).toBeNull();
    expect(session.closeCause).toBeNull();
    expect(events.map((e) => e.data?.reason)).toEqual(["policy", "policy", "reserved_topic"]);
  });

  it("delivers only what the receiver may receive, retained messages included, and reports each denied topic once", () => {
    const auth = authorizer();
    const session = openTestSession(sessions, device("d1"));
    const own = packet("devices/d1/commands/reboot");
    expect(auth.authorizeForward(session.client, own)).toBe(own);
    expect(auth.authorizeForward(session.client, packet("devices/d2/commands/reboot", "x", true))).toBeNull();
    expect(auth.authorizeForward(session.client, packet("devices/d2/commands/reboot"))).toBeNull();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: "acl.denied", severity: "low", data: { action: "receive", topic: "devices/d2/commands/reboot", retained: true } });
  });

  it("decides with the registry role the subject carries, united with the device's group assignments", async () => {
    const policy = new PolicyHolder([...BUILTIN_ROLES, SENSOR_READER, COMMANDER], [{ role: "sensor-reader", kind: "group", target: "plant" }]);
    const auth = authorizer({}, policy);
    const reader = openTestSession(sessions, device("r1", { role: "sensor-reader" }));
    const plain = openTestSession(sessions, device("p1"));
    const inPlant = openTestSession(sessions, device("g1", { group: "plant" }));
    expect(await subscribe(auth, reader, "sensors/+/temp")).not.toBeNull();
    expect(await subscribe(auth, reader, "devices/r1/commands/#")).toBeNull(); // its registry role is not `device`
    expect(await subscribe(auth, plain, "sensors/+/temp")).toBeNull();
    expect(await subscribe(auth, inPlant, "sensors/+/temp")).not.toBeNull();
    expect(await subscribe(auth, inPlant, "devices/g1/commands/#")).not.toBeNull();
  });

  it("narrows a quarantined device to reporting its status, whatever roles it holds", async () => {
    const auth = authorizer();
    const session = openTestSession(sessions, device("q1", { role: "commander", status: "quarantined" }));
    expect(await publish(auth, session, "devices/q1/status")).toEqual({ error: null, dropped: false });
    expect(await publish(auth, session, "devices/d1/commands/reboot")).toEqual({ error: null, dropped: true });
    expect(await subscribe(auth, session, "devices/q1/commands/#")).toBeNull();
    expect(auth.authorizeForward(session.client, packet("devices/q1/commands/x"))).toBeNull();
  });

  it("gives a session closed by enforcement nothing more: no publish, will, subscription or delivery", async () => {
    const auth = authorizer();
    const session = openTestSession(sessions, device("d1"));
    session.closeCause = "cert_revoked";
    expect(await publish(auth, session, "devices/d1/telemetry/t")).toMatchObject({ error: "session closed: cert_revoked" });
    session.client.closed = true; // a will is published after the connection ended
    expect(await publish(auth, session, "devices/d1/events/gone")).toMatchObject({ error: "session closed: cert_revoked" });
    expect(await subscribe(auth, session, "devices/d1/commands/#")).toBeNull();
    expect(auth.authorizeForward(session.client, packet("devices/d1/commands/x"))).toBeNull();
  });

  it("judges a will left by a dead node (no client) against the device's current record", async () => {
    const auth = authorizer();
    device("d1");
    expect(await publish(auth, null, "devices/d1/events/gone")).toEqual({ error: null, dropped: false });
    expect(await publish(auth, null, "devices/d2/events/gone")).toMatchObject({ error: "will denied" });
    directory.update("d1", { status: "suspended" });
    expect(await publish(auth, null, "devices/d1/events/gone")).toMatchObject({ error: "will of an inactive device" });
  });

  it("removes the subscriptions a narrowed subject no longer allows, and reports each", () => {
    const auth = authorizer();
    const session = openTestSession(sessions, device("d1"), { subscriptions: ["devices/d1/commands/#", "devices/d1/ota"] });
    expect(auth.pruneSubscriptions(session)).toEqual([]);
    session.subject = { ...session.subject, status: "quarantined" };
    expect(auth.pruneSubscriptions(session)).toEqual(["devices/d1/commands/#", "devices/d1/ota"]);
    expect(session.client.subscriptions).toEqual({});
    expect(events.map((e) => [e.data?.topic, e.data?.reason, e.data?.removed])).toEqual([
      ["devices/d1/commands/#", "policy_changed", true],
      ["devices/d1/ota", "policy_changed", true],
    ]);
  });
});
