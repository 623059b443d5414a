import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CborTag, decodeCanonicalCbor, encodeCbor } from "./cbor.js";
import { decrypt0, encrypt0 } from "./cose-encrypt0.js";
import { HEADER } from "./cose-constants.js";
import { Keyring } from "./keyring.js";
import { ReplayGuard } from "./replay-window.js";
import { PayloadOpener, PayloadSealer } from "./e2e-channel.js";
import { isMoatError, type ErrorCode } from "../errors.js";

const TOPIC = "devices/dev-1/telemetry";
const key = randomBytes(32);
const ring = new Keyring().add("k1", key);

function codeOf(fn: () => unknown): ErrorCode | "no error" | "not a MoatError" {
  try {
    fn();
    return "no error";
  } catch (error) {
    return isMoatError(error) ? error.code : "not a MoatError";
  }
}

/** Re-encodes a message after editing its decoded parts. */
function edit(message: Buffer, change: (parts: [Buffer, Map<number, unknown>, Buffer]) => void): Buffer {
  const tagged = decodeCanonicalCbor(message, "test", "COSE_MALFORMED") as CborTag;
  const parts = tagged.value as [Buffer, Map<number, unknown>, Buffer];
  change(parts);
  return encodeCbor(new CborTag(parts, 16));
}

describe("COSE_Encrypt0 (A256GCM)", () => {
  it("round-trips and carries kid, sequence number and topic binding", () => {
    const message = encrypt0(Buffer.from("23.5 C"), { key, kid: "k1", seq: 7, externalAad: TOPIC });
    const opened = decrypt0(message, { keys: ring, externalAad: TOPIC, replay: new ReplayGuard() });
    expect(opened.plaintext.toString()).toBe("23.5 C");
    expect(opened.kid.toString()).toBe("k1");
    expect(opened.seq).toBe(7);
    const tagged = decodeCanonicalCbor(message, "m", "COSE_MALFORMED") as CborTag;
    expect(tagged.tag).toBe(16);
    const [protectedBytes, unprotected] = tagged.value as [Buffer, Map<number, unknown>];
    const protectedHeader = decodeCanonicalCbor(protectedBytes, "p", "COSE_MALFORMED") as Map<number, unknown>;
    expect(protectedHeader.get(HEADER.alg)).toBe(3);
    expect(protectedHeader.get(HEADER.moatSequence)).toBe(7);
    expect(protectedHeader.get(HEADER.crit)).toEqual([HEADER.moatSequence]);
    expect((unprotected.get(HEADER.kid) as Buffer).toString()).toBe("k1");
    expect((unprotected.get(HEADER.iv) as Buffer).length).toBe(12);
  });

  it("keeps sequence numbers above 2^32 as integers", () => {
    const seq = 2 ** 40 + 3;
    const opened = decrypt0(encrypt0(Buffer.from("x"), { key, kid: "k1", seq, externalAad: TOPIC }), { keys: ring, externalAad: TOPIC });
    expect(opened.seq).toBe(seq);
  });

  it("reports a tampered ciphertext as COSE_DECRYPT_FAILED", () => {
    const message = encrypt0(Buffer.from("payload"), { key, kid: "k1", seq: 1, externalAad: TOPIC });
    const tampered = edit(message, (parts) => {
      parts[2] = Buffer.from(parts[2]);
      parts[2][0]! ^= 1;
    });
    expect(codeOf(() => decrypt0(tampered, { keys: ring, externalAad: TOPIC }))).toBe("COSE_DECRYPT_FAILED");
  });

  it("reports an edited protected header (sequence number) as COSE_DECRYPT_FAILED", () => {
    const message = encrypt0(Buffer.from("payload"), { key, kid: "k1", seq: 1, externalAad: TOPIC });
    const tampered = edit(message, (parts) => {
      const header = decodeCanonicalCbor(parts[0], "p", "COSE_MALFORMED") as Map<number, unknown>;
      header.set(HEADER.moatSequence, 99);
      parts[0] = encodeCbor(header);
    });
    expect(codeOf(() => decrypt0(tampered, { keys: ring, externalAad: TOPIC }))).toBe("COSE_DECRYPT_FAILED");
  });

  it("reports a message replayed to another topic as COSE_TOPIC_MISMATCH", () => {
    const message = encrypt0(Buffer.from("open valve"), { key, kid: "k1", seq: 1, externalAad: TOPIC });
    expect(codeOf(() => decrypt0(message, { keys: ring, externalAad: "devices/dev-2/telemetry" }))).toBe("COSE_TOPIC_MISMATCH");
  });

  it("still refuses another topic when the sender left out the topic hint", () => {
    const message = encrypt0(Buffer.from("open valve"), { key, kid: "k1", externalAad: TOPIC, topicHint: false });
    expect(codeOf(() => decrypt0(message, { keys: ring, externalAad: "devices/dev-2/telemetry" }))).toBe("COSE_DECRYPT_FAILED");
    expect(decrypt0(message, { keys: ring, externalAad: TOPIC }).plaintext.toString()).toBe("open valve");
  });

  it("reports an unknown or missing key id as COSE_KID_UNKNOWN", () => {
    const message = encrypt0(Buffer.from("x"), { key, kid: "k9", seq: 1, externalAad: TOPIC });
    expect(codeOf(() => decrypt0(message, { keys: ring, externalAad: TOPIC }))).toBe("COSE_KID_UNKNOWN");
    const noKid = edit(encrypt0(Buffer.from("x"), { key, kid: "k1", seq: 1, externalAad: TOPIC }), (parts) => parts[1].delete(HEADER.kid));
    expect(codeOf(() => decrypt0(noKid, { keys: ring, externalAad: TOPIC }))).toBe("COSE_KID_UNKNOWN");
  });

  it("refuses a replayed sequence number and one below the window, and a forgery does not move the window", () => {
    const guard = new ReplayGuard(64);
    const open = (m: Buffer) => decrypt0(m, { keys: ring, externalAad: TOPIC, replay: guard });
    const first = encrypt0(Buffer.from("a"), { key, kid: "k1", seq: 100, externalAad: TOPIC });
    open(first);
    expect(codeOf(() => open(first))).toBe("COSE_REPLAYED");
    // Out of order inside the window is fine, once.
    const late = encrypt0(Buffer.from("b"), { key, kid: "k1", seq: 90, externalAad: TOPIC });
    open(late);
    expect(codeOf(() => open(late))).toBe("COSE_REPLAYED");
    expect(codeOf(() => open(encrypt0(Buffer.from("c"), { key, kid: "k1", seq: 36, externalAad: TOPIC })))).toBe("COSE_REPLAYED");
    // A forged message with a huge sequence number fails authentication and leaves the window alone.
    const forged = edit(encrypt0(Buffer.from("d"), { key, kid: "k1", seq: 1_000_000, externalAad: TOPIC }), (parts) => {
      parts[2] = Buffer.from(parts[2]);
      parts[2][0]! ^= 1;
    });
    expect(codeOf(() => open(forged))).toBe("COSE_DECRYPT_FAILED");
    expect(open(encrypt0(Buffer.from("e"), { key, kid: "k1", seq: 101, externalAad: TOPIC })).seq).toBe(101);
  });

  it("requires a sequence number when replay protection is on", () => {
    const message = encrypt0(Buffer.from("x"), { key, kid: "k1", externalAad: TOPIC });
    expect(codeOf(() => decrypt0(message, { keys: ring, externalAad: TOPIC, replay: new ReplayGuard() }))).toBe("COSE_SEQUENCE_MISSING");
  });

  it("refuses algorithms outside the allow-list and unknown critical headers", () => {
    const message = encrypt0(Buffer.from("x"), { key, kid: "k1", seq: 1, externalAad: TOPIC });
    const a128 = edit(message, (parts) => {
      const header = decodeCanonicalCbor(parts[0], "p", "COSE_MALFORMED") as Map<number, unknown>;
      header.set(HEADER.alg, 1);
      parts[0] = encodeCbor(header);
    });
    expect(codeOf(() => decrypt0(a128, { keys: ring, externalAad: TOPIC }))).toBe("COSE_ALG_UNSUPPORTED");
    const crit = edit(message, (parts) => {
      const header = decodeCanonicalCbor(parts[0], "p", "COSE_MALFORMED") as Map<number, unknown>;
      header.set(HEADER.crit, [HEADER.moatSequence, -70000]);
      parts[0] = encodeCbor(header);
    });
    expect(codeOf(() => decrypt0(crit, { keys: ring, externalAad: TOPIC }))).toBe("COSE_MALFORMED");
  });

  it("rejects malformed messages with COSE_MALFORMED", () => {
    const good = encrypt0(Buffer.from("x"), { key, kid: "k1", seq: 1, externalAad: TOPIC });
    const cases: Buffer[] = [
      Buffer.alloc(0),
      Buffer.from("not cbor at all"),
      good.subarray(0, good.length - 3),
      Buffer.concat([good, Buffer.from([0])]),
      encodeCbor(new CborTag([Buffer.alloc(0), new Map(), Buffer.alloc(16)], 18)),
      encodeCbor(new CborTag([Buffer.alloc(0), new Map()], 16)),
      encodeCbor(new CborTag(["text", new Map(), Buffer.alloc(16)], 16)),
      // Duplicate label in the unprotected map (hand-written CBOR): {4: h'01', 4: h'02'}.
      Buffer.concat([Buffer.from("d0834043a10103", "hex"), Buffer.from("a2044101044102", "hex"), Buffer.from("40", "hex")]),
      edit(good, (parts) => parts[1].set(HEADER.iv, Buffer.alloc(8))),
      edit(good, (parts) => parts[1].set(HEADER.alg, 3)),
    ];
    for (const bad of cases) expect(codeOf(() => decrypt0(bad, { keys: ring, externalAad: TOPIC }))).toBe("COSE_MALFORMED");
  });

  it("never returns plaintext for a flipped bit and never throws anything but a MoatError on junk", () => {
    const message = encrypt0(Buffer.from("sensitive reading"), { key, kid: "k1", seq: 5, externalAad: TOPIC });
    fc.assert(
      fc.property(fc.nat({ max: message.length * 8 - 1 }), (bit) => {
        const flipped = Buffer.from(message);
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        const code = codeOf(() => decrypt0(flipped, { keys: ring, externalAad: TOPIC }));
        return code !== "no error" && code !== "not a MoatError";
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => codeOf(() => decrypt0(junk, { keys: ring, externalAad: TOPIC })) !== "not a MoatError"),
      { numRuns: 300 },
    );
  });
});

describe("PayloadSealer / PayloadOpener with key rotation by kid", () => {
  it("switches senders to the new primary key while receivers still open the old one until it is retired", () => {
    const senderRing = new Keyring().add("gen-1", key);
    const receiverRing = new Keyring().add("gen-1", key);
    const sealer = new PayloadSealer(senderRing, 10);
    const opener = new PayloadOpener(receiverRing);
    const before = sealer.seal(TOPIC, Buffer.from("one"));
    const next = randomBytes(32);
    senderRing.add("gen-2", next, { primary: true });
    receiverRing.add("gen-2", next, { primary: true });
    const after = sealer.seal(TOPIC, Buffer.from("two"));
    expect(opener.open(TOPIC, after)).toMatchObject({ seq: 11 });
    expect(opener.open(TOPIC, before).plaintext.toString()).toBe("one");
    receiverRing.retire("gen-1");
    expect(codeOf(() => opener.open(TOPIC, sealer.seal(TOPIC, Buffer.from("x"))))).toBe("no error");
    expect(codeOf(() => new PayloadOpener(receiverRing).open(TOPIC, before))).toBe("COSE_KID_UNKNOWN");
    expect(codeOf(() => senderRing.add("gen-2", randomBytes(32)))).toBe("CRYPTO_KEY_INVALID");
  });
});

describe("hand-built context structures", () => {
  it("encode exactly as the general CBOR encoder does, for short and long byte strings", async () => {
    const { encodeContextStructure } = await import("./cbor.js");
    for (const size of [0, 1, 23, 24, 255, 256, 70_000]) {
      const a = randomBytes(size);
      const b = randomBytes(size % 7);
      expect(encodeContextStructure("Encrypt0", a, b).equals(encodeCbor(["Encrypt0", a, b]))).toBe(true);
      expect(encodeContextStructure("Signature1", b, a, a).equals(encodeCbor(["Signature1", b, a, a]))).toBe(true);
    }
  });
});

describe("IVs", () => {
  it("are 12 bytes and never repeat across pool refills", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1500; i++) {
      const tagged = decodeCanonicalCbor(encrypt0(Buffer.from("x"), { key, kid: "k1" }), "m", "COSE_MALFORMED") as CborTag;
      const iv = (tagged.value as [Buffer, Map<number, unknown>])[1].get(HEADER.iv) as Buffer;
      expect(iv).toHaveLength(12);
      seen.add(iv.toString("hex"));
    }
    expect(seen.size).toBe(1500);
  });
});
