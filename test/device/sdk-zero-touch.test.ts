/**
 * Zero-touch enrollment: a factory (IDevID) certificate made with openssl under a manufacturer CA the
 * server trusts (`moat ca trust-manufacturer`) enrolls the device over EST without a token; one from an
 * untrusted CA is refused with the server's code.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MoatDevice } from "../../src/device/index.js";
import { isMoatError } from "../../src/errors.js";
import { tempDir } from "../helpers/temp.js";
import { startDeviceTestServer, type DeviceTestServer } from "./helpers.js";

const openssl = (args: string[], cwd: string) => execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });

/** A manufacturer CA and a factory certificate for `deviceId` (serialNumber attribute), both by openssl. */
function manufacturer(dir: string, name: string, deviceId: string): { caPem: string; certPem: string; keyPem: string } {
  const ext = join(dir, `${name}-ca.ext`);
  writeFileSync(ext, "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n");
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}-ca.key`, "-out", `${name}-ca.pem`, "-subj", `/O=${name}/CN=${name} IDevID CA`, "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], dir);
  openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}-dev.key`, "-out", `${name}-dev.csr`, "-subj", `/O=${name}/serialNumber=${deviceId}/CN=unit ${deviceId}`], dir);
  const leafExt = join(dir, `${name}-leaf.ext`);
  writeFileSync(leafExt, "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
  openssl(["x509", "-req", "-in", `${name}-dev.csr`, "-CA", `${name}-ca.pem`, "-CAkey", `${name}-ca.key`, "-CAcreateserial", "-out", `${name}-dev.pem`, "-days", "30", "-extfile", leafExt], dir);
  return { caPem: readFileSync(join(dir, `${name}-ca.pem`), "utf8"), certPem: readFileSync(join(dir, `${name}-dev.pem`), "utf8"), keyPem: readFileSync(join(dir, `${name}-dev.key`), "utf8") };
}

describe("device SDK: zero-touch enrollment with a factory certificate", () => {
  let s: DeviceTestServer;
  const work = tempDir("moat-idevid-");

  beforeAll(async () => {
    s = await startDeviceTestServer();
  });
  afterAll(async () => {
    await s?.close();
    work.cleanup();
  });

  it("a factory certificate from a trusted manufacturer CA enrolls the registered device; the device key is new and its own", async () => {
    const acme = manufacturer(work.path, "acme", "zt-1");
    await s.app.pki.enrollment.trustManufacturer(acme.caPem, "test");
    await s.app.devices.create({ id: "zt-1" }, "test");
    const device = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "zt-1", factory: { certPem: acme.certPem, keyPem: acme.keyPem }, dir: s.deviceDir() });
    try {
      expect((await s.app.devices.get("zt-1")).status).toBe("active");
      const records = await s.app.pki.certificates.list({ deviceId: "zt-1" });
      expect(records.map((r) => r.serialHex)).toEqual([device.certificate.serial]);
      // The operational key is not the factory key: the factory identity only vouched for the enrollment.
      const factoryPub = execFileSync("openssl", ["pkey", "-pubout"], { input: acme.keyPem }).toString();
      const devicePub = execFileSync("openssl", ["x509", "-noout", "-pubkey"], { input: records[0]!.certificateDer.toString("base64").replace(/(.{64})/g, "$1\n").replace(/^/, "-----BEGIN CERTIFICATE-----\n") + "\n-----END CERTIFICATE-----\n" }).toString();
      expect(devicePub).not.toBe(factoryPub);
      await device.connect();
      await device.publish("devices/zt-1/telemetry/t", "zero-touch", { qos: 1 });
    } finally {
      await device.close();
    }
  });

  it("a factory certificate from a manufacturer the server does not trust is refused: DEVICE_ENROLL_REFUSED / PKI_MANUFACTURER_CERT_UNTRUSTED", async () => {
    const rogue = manufacturer(work.path, "rogue", "zt-2");
    await s.app.devices.create({ id: "zt-2" }, "test");
    const error = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "zt-2", factory: { certPem: rogue.certPem, keyPem: rogue.keyPem }, dir: s.deviceDir() }).catch((e: unknown) => e);
    expect(isMoatError(error, "DEVICE_ENROLL_REFUSED")).toBe(true);
    expect((error as { detail: { serverCode: string } }).detail.serverCode).toBe("PKI_MANUFACTURER_CERT_UNTRUSTED");
    expect((await s.app.devices.get("zt-2")).status).toBe("pending");
  });
});
