import { createRequire } from "node:module";
import { createPublicKey, generateKeyPairSync, verify as nodeVerify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sign1, verify1 } from "../../src/crypto/index.js";
import { isMoatError } from "../../src/errors.js";

interface CoseJsSign {
  create(headers: { p?: object; u?: object }, payload: Buffer, signer: { key: { d: Buffer }; externalAAD?: Buffer }): Promise<Buffer>;
  verify(message: Buffer, verifier: { key: { x: Buffer; y: Buffer }; externalAAD?: Buffer }): Promise<Buffer>;
}
const requireHere = createRequire(import.meta.url);
const coseJs = requireHere("cose-js") as { sign: CoseJsSign };
// cose-js's own CBOR library (the `cbor` package), independent of Moat's own CBOR code.
const otherCbor = createRequire(requireHere.resolve("cose-js"))("cbor") as { encode(value: unknown): Buffer; decodeFirstSync(bytes: Buffer): { tag: number; value: unknown[] } };

const TOPIC = "tenants/acme/devices/dev-7/commands";
const pair = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const jwk = pair.privateKey.export({ format: "jwk" });
const b64 = (value: string | undefined) => Buffer.from(value ?? "", "base64url");

describe("COSE_Sign1 interop with cose-js (ES256)", () => {
  it("cose-js verifies Moat's ES256 messages (with kid, sequence number and topic)", async () => {
    const payload = Buffer.from('{"cmd":"reboot","at":"2026-01-01T00:00:00Z"}');
    const message = sign1(payload, { key: pair.privateKey, kid: "cmd-signer", seq: 12, externalAad: TOPIC });
    const verified = await coseJs.sign.verify(message, { key: { x: b64(jwk.x), y: b64(jwk.y) }, externalAAD: Buffer.from(TOPIC) });
    expect(Buffer.from(verified).equals(payload)).toBe(true);
    await expect(coseJs.sign.verify(message, { key: { x: b64(jwk.x), y: b64(jwk.y) }, externalAAD: Buffer.from("elsewhere") })).rejects.toThrow(/missmatch|mismatch/i);
  });

  it("Moat verifies cose-js ES256 messages and refuses them once altered", async () => {
    const payload = Buffer.from("firmware 1.2.3 approved");
    const message = await coseJs.sign.create({ p: { alg: "ES256" }, u: { kid: "cmd-signer" } }, payload, { key: { d: b64(jwk.d) }, externalAAD: Buffer.from(TOPIC) });
    const verified = verify1(message, { key: pair.publicKey, externalAad: TOPIC });
    expect(verified.payload.equals(payload)).toBe(true);
    expect(verified.kid?.toString()).toBe("cmd-signer");
    try {
      verify1(message, { key: pair.publicKey, externalAad: "other/topic" });
      expect.unreachable();
    } catch (error) {
      expect(isMoatError(error, "COSE_SIGNATURE_INVALID")).toBe(true);
    }
  });
});

describe("COSE_Sign1 EdDSA against an independent Sig_structure check", () => {
  // cose-js 0.9 has no EdDSA, so the check rebuilds RFC 9052 §4.4's Sig_structure from the
  // message parts with another CBOR library and verifies it with node:crypto's Ed25519.
  it("Moat's EdDSA signature covers [\"Signature1\", protected, topic, payload]", () => {
    const ed = generateKeyPairSync("ed25519");
    const payload = Buffer.from("unlock door 3");
    const message = sign1(payload, { key: ed.privateKey, kid: "door-ctl", externalAad: TOPIC });
    const decoded = otherCbor.decodeFirstSync(message);
    expect(decoded.tag).toBe(18);
    const [protectedBytes, , body, signature] = decoded.value as [Buffer, Map<number, unknown>, Buffer, Buffer];
    expect(body.equals(payload)).toBe(true);
    const toBeSigned = otherCbor.encode(["Signature1", protectedBytes, Buffer.from(TOPIC), body]);
    expect(nodeVerify(null, toBeSigned, createPublicKey(ed.publicKey.export({ format: "pem", type: "spki" })), signature)).toBe(true);
  });
});
