/**
 * A certificate that expires (renewal off, as for a device that was offline): the broker ends the
 * session at notAfter, the device stops with DEVICE_CERT_EXPIRED instead of retrying, a later boot is
 * refused at once, and the documented recovery — a new token, enroll again — works.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MoatDevice, type MoatError } from "../../src/device/index.js";
import { isMoatError } from "../../src/errors.js";
import { startDeviceTestServer, type DeviceTestServer } from "./helpers.js";

describe("device SDK: an expired certificate stops the device with a clear error and a recovery path", () => {
  let s: DeviceTestServer;

  beforeAll(async () => {
    s = await startDeviceTestServer({ "pki.certLifetime": "10s" });
  });
  afterAll(async () => {
    await s?.close();
  });

  it("expires while connected: stopped with DEVICE_CERT_EXPIRED, no retry loop; a reboot is refused at once; re-enrolling recovers", async () => {
    const token = await s.newDevice("exp-1");
    const dir = s.deviceDir();
    const device = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "exp-1", token, dir, renewal: false, backoff: { initialMs: 20, maxMs: 100 } });
    await device.connect();
    let disconnects = 0;
    device.on("disconnected", () => disconnects++);
    const stopped = new Promise<MoatError>((resolve) => device.once("stopped", resolve));
    const error = await stopped;
    expect(error.code).toBe("DEVICE_CERT_EXPIRED");
    expect(error.message).toContain("enroll again");
    expect(disconnects).toBe(0);
    expect(isMoatError(await device.renew().catch((e: unknown) => e), "DEVICE_CERT_EXPIRED")).toBe(true);
    await device.close();

    // A later boot with the expired certificate is refused before any connection attempt.
    const reboot = await MoatDevice.open({ dir });
    expect(isMoatError(await reboot.connect().catch((e: unknown) => e), "DEVICE_CERT_EXPIRED")).toBe(true);
    expect(isMoatError(await reboot.renew().catch((e: unknown) => e), "DEVICE_CERT_EXPIRED")).toBe(true);
    await reboot.close();

    // Recovery: the operator issues a new enrollment token; the device enrolls again into a fresh folder.
    const fresh = (await s.app.enrollmentTokens.create("exp-1", 600_000, "test")).token;
    const recovered = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "exp-1", token: fresh, dir: s.deviceDir(), renewal: false });
    await recovered.connect();
    await recovered.publish("devices/exp-1/telemetry/t", "back", { qos: 1 });
    expect(recovered.certificate.serial).not.toBe(reboot.certificate.serial);
    await recovered.close();
  });
});
