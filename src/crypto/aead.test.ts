import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { aes256GcmOpen, aes256GcmSeal } from "./aead.js";

const zeros = (n: number) => Buffer.alloc(n);

describe("AES-256-GCM (the one AEAD: COSE, envelopes, KEK wrapping)", () => {
  it("matches the published test vectors (GCM specification, test cases 13 and 14)", () => {
    expect(aes256GcmSeal(zeros(32), zeros(12), zeros(0), zeros(0)).toString("hex")).toBe("530f8afbc74536b9a963b4f1c4cb738b");
    expect(aes256GcmSeal(zeros(32), zeros(12), zeros(16), zeros(0)).toString("hex")).toBe("cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919");
  });

  it("opens what it sealed, and nothing that was changed: ciphertext, tag, AAD, key or IV", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 40 }), fc.nat(), (plaintext, aad, flip) => {
        const key = randomBytes(32);
        const iv = randomBytes(12);
        const sealed = aes256GcmSeal(key, iv, plaintext, aad);
        expect(sealed.length).toBe(plaintext.length + 16);
        expect(aes256GcmOpen(key, iv, sealed, aad)?.equals(Buffer.from(plaintext))).toBe(true);
        const tampered = Buffer.from(sealed);
        tampered[flip % tampered.length]! ^= 1;
        expect(aes256GcmOpen(key, iv, tampered, aad)).toBeNull();
        expect(aes256GcmOpen(key, iv, sealed, Buffer.concat([aad, Buffer.from([0])]))).toBeNull();
        expect(aes256GcmOpen(randomBytes(32), iv, sealed, aad)).toBeNull();
        expect(aes256GcmOpen(key, randomBytes(12), sealed, aad)).toBeNull();
      }),
      { numRuns: 100 },
    );
  });

  it("refuses keys and IVs of the wrong size, and reads a too-short input as a failed open", () => {
    expect(() => aes256GcmSeal(zeros(16), zeros(12), zeros(1), zeros(0))).toThrow(expect.objectContaining({ code: "CRYPTO_KEY_INVALID" }));
    expect(() => aes256GcmSeal(zeros(32), zeros(16), zeros(1), zeros(0))).toThrow(expect.objectContaining({ code: "COSE_MALFORMED" }));
    expect(aes256GcmOpen(zeros(32), zeros(12), zeros(15), zeros(0))).toBeNull();
  });
});
