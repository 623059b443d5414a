import { generateKeyPairSync, sign, verify } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ecdsaDerToRaw, ecdsaRawToDer } from "./ecdsa-signature.js";

describe("ECDSA signature encodings (RFC 3279 §2.2.3 DER ↔ r||s)", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });

  it("converts node's DER signatures to r||s and back byte for byte", () => {
    for (let i = 0; i < 50; i++) {
      const data = Buffer.from(`message ${i}`);
      const der = sign("sha256", data, privateKey);
      const raw = ecdsaDerToRaw(der, 32);
      expect(raw).toHaveLength(64);
      expect(verify("sha256", data, { key: publicKey, dsaEncoding: "ieee-p1363" }, raw)).toBe(true);
      expect(ecdsaRawToDer(raw).equals(der)).toBe(true);
    }
  });

  it("round-trips arbitrary r||s values, including leading zeros and high bits", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (raw) => ecdsaDerToRaw(ecdsaRawToDer(raw), 32).equals(Buffer.from(raw))),
      { numRuns: 300 },
    );
  });

  it("rejects malformed DER", () => {
    expect(() => ecdsaDerToRaw(Buffer.from("3006020101020101ff", "hex"), 32)).toThrow(/DER/);
    expect(() => ecdsaDerToRaw(Buffer.from("300402010102", "hex"), 32)).toThrow(/DER/);
    expect(() => ecdsaRawToDer(Buffer.alloc(3))).toThrow(/even length/);
  });
});
