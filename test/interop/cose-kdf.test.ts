/**
 * The key derivation and AAD of docs/security.md, rebuilt from the text alone with another CBOR
 * library (the one cose-js uses) and Node's HKDF: the key matches Moat's, cose-js seals with it and
 * Moat opens the message, and the example bytes printed in the docs are what Moat computes.
 */
import { createRequire } from "node:module";
import { diffieHellman, hkdfSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { decrypt0, deriveDeviceKey, generateAgreementKeyPair, kdfContext, Keyring } from "../../src/crypto/index.js";
import { REPO_ROOT } from "../helpers/cli.js";

const requireHere = createRequire(import.meta.url);
const coseJs = requireHere("cose-js") as { encrypt: { create(h: object, p: Buffer, r: { key: Buffer }, o: { externalAAD: Buffer }): Promise<Buffer> } };
const otherCbor = createRequire(requireHere.resolve("cose-js"))("cbor") as { encode(value: unknown): Buffer };

/** COSE_KDF_Context exactly as docs/security.md describes it, encoded by the other library. */
function documentedInfo(deviceId: string, applicationId: string, kid: string): Buffer {
  const protectedAlg = Buffer.from("a101381a", "hex"); // {1: -27}
  return otherCbor.encode([3, [Buffer.from(deviceId, "utf8"), null, null], [Buffer.from(applicationId, "utf8"), null, null], [256, protectedAlg, Buffer.from(kid, "utf8")]]);
}

describe("E2E key derivation, as documented", () => {
  it("the docs' example info bytes are Moat's", () => {
    const docs = readFileSync(`${REPO_ROOT}docs/security.md`, "utf8");
    const example = /For device `dev-7`, application `historian` and kid `dev-7\/1` the `info` bytes are \(hex\):\s+```\s+([0-9a-f ]+)\s+```/.exec(docs)?.[1];
    expect(example).toBeDefined();
    const bytes = Buffer.from(example!.replace(/\s+/g, ""), "hex");
    expect(bytes.equals(kdfContext("dev-7", "historian", Buffer.from("dev-7/1")))).toBe(true);
    expect(bytes.equals(documentedInfo("dev-7", "historian", "dev-7/1"))).toBe(true);
  });

  for (const curve of ["X25519", "P-256"] as const) {
    it(`${curve}: a key derived from the description alone opens with Moat; cose-js seals, Moat opens`, async () => {
      const device = generateAgreementKeyPair(curve);
      const app = generateAgreementKeyPair(curve);
      // The other side: ECDH, empty salt, documented info, 32 bytes.
      const shared = diffieHellman({ privateKey: device.privateKey, publicKey: app.publicKey });
      const theirs = Buffer.from(hkdfSync("sha256", shared, Buffer.alloc(0), documentedInfo("dev-7", "historian", "dev-7/1"), 32));
      const ours = deriveDeviceKey({ privateKey: app.privateKey, peerPublicKey: device.publicKey, deviceId: "dev-7", applicationId: "historian", kid: "dev-7/1" });
      expect(theirs.equals(ours)).toBe(true);

      const topic = "fleet/dev-7/telemetry";
      const message = await coseJs.encrypt.create({ p: { alg: "A256GCM" }, u: { kid: "dev-7/1" } }, Buffer.from("21.5"), { key: theirs }, { externalAAD: Buffer.from(topic, "utf8") });
      const opened = decrypt0(message, { keys: new Keyring().add("dev-7/1", ours), externalAad: topic });
      expect(opened.plaintext.toString()).toBe("21.5");
    });
  }
});
