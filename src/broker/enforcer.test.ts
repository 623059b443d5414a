/**
 * Live enforcement from real feed rows: the registry, PKI, credentials and policy services of a fresh
 * installation (SQLite) write the rows; a policy engine of its own (a second PolicyService on the same
 * store that learns changes only through this pipeline, as a broker node's does) and the real
 * authorizer and enforcer apply them to sessions, one row at a time and in order. Sessions have no
 * socket; test/broker/*.test.ts runs the same enforcement under aedes with MQTT clients.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "../../test/helpers/app.js";
import { closeTestSession, openTestSession, type TestSessionOptions } from "../../test/broker/helpers/session.js";
import { isDeviceId } from "../identity/index.js";
import { PolicyService } from "../policy/index.js";
import { policyStore } from "../store/index.js";
import { Authorizer } from "./authorizer.js";
import { normalizeSerial } from "./cert-auth.js";
import { ChangePipeline } from "./change-pipeline.js";
import { Enforcer } from "./enforcer.js";
import { createBrokerMetrics } from "./metrics.js";
import { MoatDeviceDirectory } from "./moat-directory.js";
import { RevocationView } from "./revocation-view.js";
import { SessionRegistry } from "./session.js";
import { resolveBrokerSettings } from "./settings.js";

describe("broker: enforcer", () => {
  let t: TestApp;
  let policy: PolicyService;
  let directory: MoatDeviceDirectory;
  let sessions: SessionRegistry;
  let revocations: RevocationView;
  let pipeline: ChangePipeline;
  let cursor: number;
  const errors: unknown[] = [];

  beforeAll(async () => {
    t = await createTestApp("sqlite");
    await t.app.policy.createRole("sensor-reader", [{ action: "subscribe", resource: "sensors/+/temp" }, { action: "receive", resource: "sensors/+/temp" }], "test");
    policy = new PolicyService(policyStore(t.app.store));
    await policy.reload();
    directory = new MoatDeviceDirectory(t.app.devices, t.app.pki.certificates, t.app.deviceCredentials, isDeviceId);
  });
  afterAll(() => t.cleanup());

  beforeEach(async () => {
    sessions = new SessionRegistry();
    revocations = new RevocationView();
    const metrics = createBrokerMetrics(() => sessions.size);
    const authorizer = new Authorizer({ sessions, decider: policy, directory, settings: resolveBrokerSettings({}), metrics, emit: () => undefined, touch: () => undefined });
    const enforcer = new Enforcer({
      sessions,
      directory,
      revocations,
      authorizer,
      metrics,
      close: closeTestSession,
      armDeadline: () => undefined,
      reloadTls: async () => undefined,
      onError: (err) => void errors.push(err),
    });
    pipeline = new ChangePipeline(policy, enforcer, (err) => void errors.push(err));
    cursor = await t.app.store.latestSeq();
  });

  /** Applies every feed row written since the last call, in order, as a broker node does; returns their kinds. */
  async function follow(): Promise<string[]> {
    const rows = await t.app.store.changesAfter(cursor);
    for (const row of rows) {
      cursor = row.seq;
      if (pipeline.admit(row)) await pipeline.apply(row);
    }
    expect(errors).toEqual([]);
    return rows.map((row) => row.kind);
  }

  /**
   * A live mTLS session of an existing device with a certificate issued for it, opened from its directory
   * record as at CONNECT; the rows written so far are applied first.
   */
  async function connect(id: string, options: Omit<TestSessionOptions, "certSerial" | "method"> = {}) {
    const issued = await t.app.pki.certificates.issueWithGeneratedKey({ deviceId: id, actor: "test" });
    await follow();
    const record = await directory.get(id);
    if (!record) throw new Error(`no device ${id}`);
    return openTestSession(sessions, record, { ...options, method: "mtls", certSerial: normalizeSerial(issued.serialHex) });
  }

  const allows = (subject: Parameters<PolicyService["decide"]>[0], action: "publish" | "subscribe" | "receive", topic: string) => policy.decide(subject, action, topic).allow;

  it("closes the session of a suspended device", async () => {
    await t.app.devices.create({ id: "s1", status: "active" }, "test");
    const session = await connect("s1");
    await t.app.devices.setStatus("s1", "suspended", "test");
    expect(await follow()).toEqual(["device.status"]);
    expect(session.closeCause).toBe("device_suspended");
    expect(session.client.closed).toBe(true);
  });

  it("narrows a quarantined device's session without closing it, and reactivation does not reopen what was removed", async () => {
    await t.app.devices.create({ id: "q1", status: "active" }, "test");
    const session = await connect("q1", { subscriptions: ["devices/q1/commands/#", "devices/q1/ota"] });
    await t.app.devices.setStatus("q1", "quarantined", "test");
    expect(await follow()).toEqual(["device.status"]);
    expect(session.closeCause).toBeNull();
    expect(session.client.closed).toBe(false);
    expect(session.status).toBe("quarantined");
    expect(session.client.subscriptions).toEqual({});
    expect(allows(session.subject, "publish", "devices/q1/status")).toBe(true);
    expect(allows(session.subject, "publish", "devices/q1/telemetry/t")).toBe(false);
    await t.app.devices.setStatus("q1", "active", "test");
    expect(await follow()).toEqual(["device.status"]);
    expect(session.status).toBe("active");
    expect(allows(session.subject, "publish", "devices/q1/telemetry/t")).toBe(true);
    expect(session.client.subscriptions).toEqual({});
  });

  it("applies a registry role change to the live session: the new role's permissions, and only those", async () => {
    await t.app.devices.create({ id: "r1", status: "active" }, "test");
    const session = await connect("r1", { subscriptions: ["devices/r1/commands/#"] });
    expect(session.subject.roles).toEqual(["device"]);
    expect(allows(session.subject, "subscribe", "sensors/+/temp")).toBe(false);
    await t.app.devices.update("r1", { role: "sensor-reader" }, "test");
    expect(await follow()).toEqual(["device.updated"]);
    expect(session.subject.roles).toEqual(["sensor-reader"]);
    expect(allows(session.subject, "subscribe", "sensors/+/temp")).toBe(true);
    expect(session.client.subscriptions).toEqual({});
    expect(session.closeCause).toBeNull();
  });

  it("re-checks a group's sessions on the policy that includes the assignment row, with no wait", async () => {
    await t.app.devices.create({ id: "g1", group: "plant", status: "active" }, "test");
    await t.app.devices.create({ id: "g2", group: "office", status: "active" }, "test");
    const inPlant = await connect("g1");
    const elsewhere = await connect("g2", { subscriptions: ["devices/g2/commands/#"] });
    await t.app.policy.assignRole("sensor-reader", { kind: "group", target: "plant" }, "test");
    expect(await follow()).toEqual(["role.assignment"]);
    // The engine of this node compiled the assignment before the row reached the sessions.
    expect(allows(inPlant.subject, "subscribe", "sensors/+/temp")).toBe(true);
    inPlant.client.subscriptions["sensors/+/temp"] = { qos: 0 };
    await t.app.policy.unassignRole("sensor-reader", { kind: "group", target: "plant" }, "test");
    expect(await follow()).toEqual(["role.assignment"]);
    // Pruned at once: the re-check ran on the policy without the assignment.
    expect(inPlant.client.subscriptions).toEqual({});
    expect(elsewhere.client.subscriptions).toEqual({ "devices/g2/commands/#": { qos: 0 } });
  });

  it("removes what a deleted role granted from every session", async () => {
    await t.app.policy.createRole("plant-reader", [{ action: "subscribe", resource: "plant/#" }], "test");
    await t.app.devices.create({ id: "p1", group: "hall", status: "active" }, "test");
    await t.app.policy.assignRole("plant-reader", { kind: "group", target: "hall" }, "test");
    expect(await follow()).toEqual(["policy.changed", "device.created", "role.assignment"]);
    const session = await connect("p1", { subscriptions: ["plant/#", "devices/p1/commands/#"] });
    expect(allows(session.subject, "subscribe", "plant/#")).toBe(true);
    await t.app.policy.deleteRole("plant-reader", "test");
    expect(await follow()).toEqual(["policy.changed"]);
    expect(Object.keys(session.client.subscriptions)).toEqual(["devices/p1/commands/#"]);
  });

  it("closes the sessions of a revoked certificate and refuses it from then on", async () => {
    await t.app.devices.create({ id: "c1", status: "active" }, "test");
    const session = await connect("c1");
    const serial = session.certSerial!;
    expect(session.closeCause).toBeNull();
    expect(revocations.isRevoked(serial)).toBe(false);
    await t.app.pki.certificates.revoke(serial, "keyCompromise", "test");
    expect(await follow()).toEqual(["cert.revoked", "crl.published"]);
    expect(session.closeCause).toBe("cert_revoked");
    expect(session.client.closed).toBe(true);
    expect(revocations.isRevoked(serial)).toBe(true);
  });

  it("applies rows in feed order: suspended then reactivated leaves the session closed", async () => {
    await t.app.devices.create({ id: "o1", status: "active" }, "test");
    const session = await connect("o1");
    await t.app.devices.setStatus("o1", "suspended", "test");
    await t.app.devices.setStatus("o1", "active", "test");
    expect(await follow()).toEqual(["device.status", "device.status"]);
    expect(session.closeCause).toBe("device_suspended");
  });

  it("applies a row once when it arrives twice (the feed and another node's broadcast)", async () => {
    await t.app.devices.create({ id: "w1", status: "active" }, "test");
    await follow();
    const [row] = await t.app.store.changesAfter(cursor - 1);
    expect(row?.kind).toBe("device.created");
    expect(pipeline.admit(row!)).toBe(false);
  });
});
