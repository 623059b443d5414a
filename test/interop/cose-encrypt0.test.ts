import { createRequire } from "node:module";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Keyring, decrypt0, encrypt0 } from "../../src/crypto/index.js";
import { isMoatError } from "../../src/errors.js";

// cose-js (an independent COSE implementation, CommonJS, untyped) is the other side of every check.
interface CoseJsEncrypt {
  create(headers: { p?: object; u?: object }, payload: Buffer, recipient: { key: Buffer }, options?: { externalAAD?: Buffer }): Promise<Buffer>;
  read(message: Buffer, key: Buffer, options?: { externalAAD?: Buffer; defaultType?: number }): Promise<Buffer>;
}
const coseJs = createRequire(import.meta.url)("cose-js") as { encrypt: CoseJsEncrypt };

const TOPIC = "tenants/acme/devices/dev-7/telemetry";
const key = randomBytes(32);

describe("COSE_Encrypt0 interop with cose-js", () => {
  it("cose-js opens Moat's messages, with the topic as external AAD and Moat's private headers in place", async () => {
    for (const size of [0, 1, 256, 5000]) {
      const payload = randomBytes(size);
      const message = encrypt0(payload, { key, kid: "dev-7/1", seq: 2 ** 33 + size, externalAad: TOPIC });
      const opened = await coseJs.encrypt.read(message, key, { externalAAD: Buffer.from(TOPIC) });
      expect(Buffer.from(opened).equals(payload)).toBe(true);
    }
  });

  it("cose-js refuses a Moat message presented with another topic", async () => {
    const message = encrypt0(Buffer.from("x"), { key, kid: "dev-7/1", seq: 1, externalAad: TOPIC });
    await expect(coseJs.encrypt.read(message, key, { externalAAD: Buffer.from("tenants/acme/devices/dev-8/telemetry") })).rejects.toThrow();
  });

  it("Moat opens cose-js messages (no sequence number, so replay protection must be off for them)", async () => {
    const ring = new Keyring().add("dev-7/1", key);
    const payload = Buffer.from('{"temperature":23.5}');
    const message = await coseJs.encrypt.create({ p: { alg: "A256GCM" }, u: { kid: "dev-7/1" } }, payload, { key }, { externalAAD: Buffer.from(TOPIC) });
    const opened = decrypt0(message, { keys: ring, externalAad: TOPIC });
    expect(opened.plaintext.equals(payload)).toBe(true);
    expect(opened.seq).toBeUndefined();
    // A receiver that enforces replay protection refuses it with a specific code.
    try {
      decrypt0(message, { keys: ring, externalAad: TOPIC, requireSequence: true });
      expect.unreachable();
    } catch (error) {
      expect(isMoatError(error, "COSE_SEQUENCE_MISSING")).toBe(true);
    }
    // Wrong topic: cose-js sends no topic hint, so it surfaces as an authentication failure.
    try {
      decrypt0(message, { keys: ring, externalAad: "other/topic" });
      expect.unreachable();
    } catch (error) {
      expect(isMoatError(error, "COSE_DECRYPT_FAILED")).toBe(true);
    }
  });
});
