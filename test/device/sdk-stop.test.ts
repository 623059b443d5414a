/**
 * A device the operator cuts off stops with a coded error instead of retrying: the broker drops or
 * refuses it (CONNACK 5 for every reason), the SDK asks GET /v1/device/status with its certificate and
 * stops with DEVICE_REVOKED / DEVICE_SUSPENDED / DEVICE_DECOMMISSIONED. A temporary refusal is retried.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MoatDevice, type MoatError } from "../../src/device/index.js";
import { isMoatError } from "../../src/errors.js";
import { startDeviceTestServer, type DeviceTestServer } from "./helpers.js";

/** Backoff short enough that a wrong "retry" would show up as further attempts within the test. */
const FAST = { backoff: { initialMs: 50, maxMs: 200 }, renewal: false as const };

/** Counts connection attempts the device reports, and resolves when it stops. */
function watch(device: MoatDevice): { stopped: Promise<MoatError>; connects: () => number; disconnects: () => number } {
  let connects = 0;
  let disconnects = 0;
  device.on("connected", () => connects++);
  device.on("disconnected", () => disconnects++);
  return { stopped: new Promise((resolve) => device.once("stopped", resolve)), connects: () => connects, disconnects: () => disconnects };
}

describe("device SDK: a revoked, suspended or decommissioned device stops retrying", () => {
  let s: DeviceTestServer;

  beforeAll(async () => {
    s = await startDeviceTestServer();
  });
  afterAll(async () => {
    await s?.close();
  });

  async function connectedDevice(id: string): Promise<MoatDevice> {
    const token = await s.newDevice(id);
    const device = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: id, token, dir: s.deviceDir(), ...FAST });
    await device.connect();
    return device;
  }

  it("revocation while connected: the broker drops the session, the device learns why and stops with DEVICE_REVOKED", async () => {
    const device = await connectedDevice("stop-revoked");
    const w = watch(device);
    await s.app.pki.certificates.revoke(device.certificate.serial, "keyCompromise", "test");
    const error = await w.stopped;
    expect(error.code).toBe("DEVICE_REVOKED");
    expect(error.detail).toMatchObject({ certificate: { status: "revoked", revocationReason: "keyCompromise" } });
    // Stopped for good: no reconnection was scheduled, and operations reject with the same error.
    expect(w.disconnects()).toBe(0);
    expect(device.connected).toBe(false);
    const publish = await device.publish("devices/stop-revoked/telemetry/t", "x", { qos: 1 }).catch((e: unknown) => e);
    expect(isMoatError(publish, "DEVICE_REVOKED")).toBe(true);
    const again = await device.connect().catch((e: unknown) => e);
    expect(isMoatError(again, "DEVICE_REVOKED")).toBe(true);
    await device.close();
  });

  it("a revoked device that boots again is refused at once: connect() rejects with DEVICE_REVOKED", async () => {
    const token = await s.newDevice("stop-boot");
    const dir = s.deviceDir();
    const first = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "stop-boot", token, dir, ...FAST });
    await s.app.pki.certificates.revoke(first.certificate.serial, "cessationOfOperation", "test");
    await first.close();
    const device = await MoatDevice.open({ dir, ...FAST });
    const error = await device.connect().catch((e: unknown) => e);
    expect(isMoatError(error, "DEVICE_REVOKED")).toBe(true);
    await device.close();
  });

  it("suspension stops with DEVICE_SUSPENDED; decommissioning with DEVICE_DECOMMISSIONED", async () => {
    const suspended = await connectedDevice("stop-suspended");
    const ws = watch(suspended);
    await s.app.devices.setStatus("stop-suspended", "suspended", "test");
    expect((await ws.stopped).code).toBe("DEVICE_SUSPENDED");
    await suspended.close();

    const gone = await connectedDevice("stop-gone");
    const wg = watch(gone);
    await s.app.devices.setStatus("stop-gone", "decommissioned", "test");
    expect((await wg.stopped).code).toBe("DEVICE_DECOMMISSIONED");
    await gone.close();
  });

  it("a dropped connection without a reason to stop is retried with backoff and comes back", async () => {
    const device = await connectedDevice("stop-not");
    const w = watch(device);
    const back = new Promise<void>((resolve) => device.once("connected", () => resolve()));
    // The network drops the connection (the TLS socket dies under the client): the server says the
    // device is fine, so it waits its backoff and reconnects.
    (device as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy();
    await back;
    expect(w.disconnects()).toBeGreaterThanOrEqual(1);
    expect(device.connected).toBe(true);
    await device.publish("devices/stop-not/telemetry/t", "back", { qos: 1 });
    await device.close();
  });
});
