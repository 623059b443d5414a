import { createHmac, diffieHellman, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { deriveDeviceKey, generateAgreementKeyPair, kdfContext } from "./device-key.js";
import { isMoatError } from "../errors.js";

describe("per-device keys from ECDH + HKDF-SHA256 with the COSE KDF context", () => {
  it.each(["P-256", "X25519"] as const)("device and application derive the same key on %s; kid, device and app change it", (curve) => {
    const device = generateAgreementKeyPair(curve);
    const app = generateAgreementKeyPair(curve);
    const base = { deviceId: "dev-1", applicationId: "historian", kid: "dev-1/1" };
    const onDevice = deriveDeviceKey({ ...base, privateKey: device.privateKey, peerPublicKey: app.publicKey });
    const onApp = deriveDeviceKey({ ...base, privateKey: app.privateKey, peerPublicKey: device.publicKey });
    expect(onDevice).toHaveLength(32);
    expect(onDevice.equals(onApp)).toBe(true);
    const variants = [
      { ...base, kid: "dev-1/2" },
      { ...base, deviceId: "dev-2" },
      { ...base, applicationId: "billing" },
    ].map((context) => deriveDeviceKey({ ...context, privateKey: device.privateKey, peerPublicKey: app.publicKey }));
    for (const variant of variants) expect(variant.equals(onDevice)).toBe(false);
  });

  it("encodes the context as RFC 9053 §5.2 specifies and matches a hand-computed HKDF", () => {
    const context = kdfContext("d", "a", Buffer.from("k"));
    // [3, [h'64', nil, nil], [h'61', nil, nil], [256, h'A101381A', h'6B']]
    expect(context.toString("hex")).toBe("8403834164f6f6834161f6f68319010044a101381a416b");
    const device = generateKeyPairSync("x25519");
    const app = generateKeyPairSync("x25519");
    const derived = deriveDeviceKey({ privateKey: device.privateKey, peerPublicKey: app.publicKey, deviceId: "d", applicationId: "a", kid: "k" });
    // HKDF (RFC 5869) by hand: PRK = HMAC(salt = 32 zero bytes, IKM); OKM = HMAC(PRK, info || 0x01).
    const ikm = diffieHellman({ privateKey: device.privateKey, publicKey: app.publicKey });
    const prk = createHmac("sha256", Buffer.alloc(32)).update(ikm).digest();
    const okm = createHmac("sha256", prk).update(Buffer.concat([context, Buffer.from([1])])).digest();
    expect(derived.equals(okm)).toBe(true);
  });

  it("refuses mixed curves and unsuitable keys", () => {
    const p256 = generateAgreementKeyPair("P-256");
    const x = generateAgreementKeyPair("X25519");
    const ed = generateKeyPairSync("ed25519");
    const base = { deviceId: "d", applicationId: "a", kid: "k" };
    for (const [privateKey, peerPublicKey] of [
      [p256.privateKey, x.publicKey],
      [ed.privateKey, x.publicKey],
      [p256.publicKey, p256.publicKey],
    ] as const) {
      try {
        deriveDeviceKey({ ...base, privateKey, peerPublicKey });
        expect.unreachable();
      } catch (error) {
        expect(isMoatError(error, "CRYPTO_KEY_INVALID")).toBe(true);
      }
    }
  });
});
