import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isMoatError } from "../errors.js";
import { Envelope } from "./envelope.js";
import { singleKekProvider, softwareKek } from "./kek.js";

const envelope = (key = randomBytes(32)) => new Envelope(singleKekProvider("test", softwareKek(key, "test")));

describe("envelope encryption", () => {
  it("round-trips and uses a fresh data key and nonce per seal", async () => {
    const env = envelope();
    const a = await env.seal(Buffer.from("secret"), "row:1");
    const b = await env.seal(Buffer.from("secret"), "row:1");
    expect(a.equals(b)).toBe(false);
    expect((await env.open(a, "row:1")).toString()).toBe("secret");
    expect(a.includes(Buffer.from("secret"))).toBe(false);
  });

  it("refuses a ciphertext moved to another row (AAD)", async () => {
    const env = envelope();
    const blob = await env.seal(Buffer.from("secret"), "device-secret:a");
    await expect(env.open(blob, "device-secret:b")).rejects.toSatisfy((e) => isMoatError(e, "ENVELOPE_DECRYPT_FAILED"));
  });

  it("refuses a flipped byte anywhere in the payload", async () => {
    const env = envelope();
    const blob = await env.seal(Buffer.from("some secret bytes"), "x");
    const tampered = Buffer.from(blob);
    tampered[tampered.length - 1]! ^= 1;
    await expect(env.open(tampered, "x")).rejects.toSatisfy((e) => isMoatError(e, "ENVELOPE_DECRYPT_FAILED"));
  });

  it("refuses another KEK with KEK_MISMATCH and garbage with ENVELOPE_MALFORMED", async () => {
    const blob = await envelope().seal(Buffer.from("s"), "x");
    await expect(envelope().open(blob, "x")).rejects.toSatisfy((e) => isMoatError(e, "KEK_MISMATCH"));
    await expect(envelope().open(Buffer.from("not an envelope"), "x")).rejects.toSatisfy((e) => isMoatError(e, "ENVELOPE_MALFORMED"));
    await expect(envelope().open(blob.subarray(0, 20), "x")).rejects.toSatisfy((e) => isMoatError(e, "ENVELOPE_MALFORMED"));
  });
});
