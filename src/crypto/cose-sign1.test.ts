import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CborTag, decodeCanonicalCbor, encodeCbor } from "./cbor.js";
import { sign1, verify1 } from "./cose-sign1.js";
import { ReplayGuard } from "./replay-window.js";
import { isMoatError, type ErrorCode } from "../errors.js";

function codeOf(fn: () => unknown): ErrorCode | "no error" | "not a MoatError" {
  try {
    fn();
    return "no error";
  } catch (error) {
    return isMoatError(error) ? error.code : "not a MoatError";
  }
}

const TOPIC = "devices/dev-1/commands";
const p256 = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const ed = generateKeyPairSync("ed25519");

describe.each([
  ["ES256", p256, -7],
  ["EdDSA", ed, -8],
] as const)("COSE_Sign1 with %s", (_name, pair, alg) => {
  const keys = { get: (kid: Uint8Array) => (Buffer.from(kid).toString() === "cmd-key" ? pair.publicKey : undefined) };

  it("signs and verifies with kid, sequence number and topic", () => {
    const message = sign1(Buffer.from('{"cmd":"reboot"}'), { key: pair.privateKey, kid: "cmd-key", seq: 3, externalAad: TOPIC });
    const verified = verify1(message, { keys, externalAad: TOPIC, replay: new ReplayGuard() });
    expect(verified).toMatchObject({ alg, seq: 3 });
    expect(verified.payload.toString()).toBe('{"cmd":"reboot"}');
    expect((decodeCanonicalCbor(message, "m", "COSE_MALFORMED") as CborTag).tag).toBe(18);
  });

  it("gives a specific error for each failure", () => {
    const message = sign1(Buffer.from("reboot"), { key: pair.privateKey, kid: "cmd-key", seq: 3, externalAad: TOPIC });
    const parts = (decodeCanonicalCbor(message, "m", "COSE_MALFORMED") as CborTag).value as [Buffer, Map<number, unknown>, Buffer, Buffer];
    const altered = encodeCbor(new CborTag([parts[0], parts[1], Buffer.from("format"), parts[3]], 18));
    expect(codeOf(() => verify1(altered, { keys, externalAad: TOPIC }))).toBe("COSE_SIGNATURE_INVALID");
    expect(codeOf(() => verify1(message, { keys, externalAad: "devices/dev-2/commands" }))).toBe("COSE_TOPIC_MISMATCH");
    expect(codeOf(() => verify1(message, { keys: { get: () => undefined }, externalAad: TOPIC }))).toBe("COSE_KID_UNKNOWN");
    const other = alg === -7 ? generateKeyPairSync("ec", { namedCurve: "prime256v1" }) : generateKeyPairSync("ed25519");
    expect(codeOf(() => verify1(message, { key: other.publicKey, externalAad: TOPIC }))).toBe("COSE_SIGNATURE_INVALID");
    const wrongType = alg === -7 ? ed : p256;
    expect(codeOf(() => verify1(message, { key: wrongType.publicKey, externalAad: TOPIC }))).toBe("COSE_ALG_UNSUPPORTED");
    const guard = new ReplayGuard();
    verify1(message, { keys, externalAad: TOPIC, replay: guard });
    expect(codeOf(() => verify1(message, { keys, externalAad: TOPIC, replay: guard }))).toBe("COSE_REPLAYED");
    expect(codeOf(() => verify1(message.subarray(0, message.length - 1), { keys, externalAad: TOPIC }))).toBe("COSE_MALFORMED");
  });
});

describe("COSE_Sign1 key allow-list", () => {
  it("refuses RSA and P-384 keys", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
    const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
    expect(codeOf(() => sign1(Buffer.from("x"), { key: rsa.privateKey }))).toBe("CRYPTO_KEY_INVALID");
    expect(codeOf(() => sign1(Buffer.from("x"), { key: p384.privateKey }))).toBe("CRYPTO_KEY_INVALID");
    expect(codeOf(() => sign1(Buffer.from("x"), { key: p256.publicKey }))).toBe("CRYPTO_KEY_INVALID");
  });
});
