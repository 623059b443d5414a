import { createHash, createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isMoatError } from "../errors.js";
import { auditOrigin, openCheckpoint, parseCheckpointText, signCheckpoint } from "./checkpoint.js";
import { formatVerifierKey, noteKeyId, parseVerifierKey, type NoteSigner } from "./signed-note.js";

function testSigner(name: string): NoteSigner {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
  return { name, publicKey: raw, sign: async (message) => sign(null, message, privateKey) };
}

const ORIGIN = auditOrigin("fleet.example.com");
const ROOT = createHash("sha256").update("root").digest();

/**
 * An independent reading of the C2SP signed-note and tlog-checkpoint texts: split at the last blank
 * line, take the signature line for the key, recompute the key id, verify Ed25519 over the text.
 */
function independentVerify(note: string, vkey: string): { origin: string; size: number; root: string } {
  const [name, hexId, keyB64] = [vkey.slice(0, vkey.indexOf("+")), vkey.split("+")[1]!, vkey.slice(vkey.indexOf("+", vkey.indexOf("+") + 1) + 1)];
  const keyBytes = Buffer.from(keyB64, "base64");
  if (keyBytes[0] !== 1) throw new Error("not ed25519");
  const id = createHash("sha256").update(`${name}\n`).update(keyBytes).digest().subarray(0, 4);
  if (id.toString("hex") !== hexId) throw new Error("key id");
  const cut = note.lastIndexOf("\n\n");
  const text = note.slice(0, cut + 1);
  const line = note.slice(cut + 2).split("\n").find((l) => l.startsWith(`\u2014 ${name} `))!;
  const sig = Buffer.from(line.split(" ")[2]!, "base64");
  if (!sig.subarray(0, 4).equals(id)) throw new Error("sig key id");
  const key = createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), keyBytes.subarray(1)]), format: "der", type: "spki" });
  if (!verify(null, Buffer.from(text), key, sig.subarray(4))) throw new Error("signature");
  const [origin, size, root] = text.split("\n");
  return { origin: origin!, size: Number(size), root: Buffer.from(root!, "base64").toString("hex") };
}

describe("tlog-checkpoint signed notes", () => {
  it("writes the format another implementation reads", async () => {
    const signer = testSigner(ORIGIN);
    const note = await signCheckpoint({ origin: ORIGIN, size: 42, rootHash: ROOT }, signer);
    expect(note).toMatch(/^fleet\.example\.com\/moat-audit\n42\n[A-Za-z0-9+/]{43}=\n\n\u2014 fleet\.example\.com\/moat-audit [A-Za-z0-9+/]{91}=\n$/);
    const vkey = formatVerifierKey(signer.name, signer.publicKey);
    expect(vkey).toMatch(/^fleet\.example\.com\/moat-audit\+[0-9a-f]{8}\+[A-Za-z0-9+/]{43}[A-Za-z0-9+/=]$/);
    expect(independentVerify(note, vkey)).toEqual({ origin: ORIGIN, size: 42, root: ROOT.toString("hex") });
    expect(openCheckpoint(note, parseVerifierKey(vkey), ORIGIN)).toEqual({ origin: ORIGIN, size: 42, rootHash: ROOT });
  });

  it("computes the key id from the name and key as the spec says", () => {
    const pub = Buffer.alloc(32, 7);
    const expected = createHash("sha256").update(Buffer.concat([Buffer.from("a.example/log"), Buffer.from([0x0a, 0x01]), pub])).digest().subarray(0, 4);
    expect(noteKeyId("a.example/log", pub)).toEqual(expected);
    expect(parseVerifierKey(formatVerifierKey("a.example/log", pub))).toEqual({ name: "a.example/log", keyId: expected, publicKey: pub });
  });

  it("refuses an altered text, another key, a foreign origin and malformed notes with coded errors", async () => {
    const signer = testSigner(ORIGIN);
    const key = parseVerifierKey(formatVerifierKey(signer.name, signer.publicKey));
    const note = await signCheckpoint({ origin: ORIGIN, size: 42, rootHash: ROOT }, signer);
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return isMoatError(error) ? error.code : `uncoded: ${String(error)}`;
      }
      return "accepted";
    };
    expect(code(() => openCheckpoint(note.replace("\n42\n", "\n43\n"), key))).toBe("AUDIT_SIGNATURE_INVALID");
    const other = testSigner(ORIGIN);
    expect(code(() => openCheckpoint(note, parseVerifierKey(formatVerifierKey(other.name, other.publicKey))))).toBe("AUDIT_SIGNATURE_INVALID");
    expect(code(() => openCheckpoint(note, key, "other.example/moat-audit"))).toBe("AUDIT_CHECKPOINT_FOREIGN");
    for (const bad of ["", "no blank line\n", `${ORIGIN}\n42\n\n\u2014 x AAAA\n`, note.replace("\u2014", "--"), note.slice(0, -1), `${note.slice(0, 5)}\u0007${note.slice(5)}`, Buffer.from([0xff, 0x0a, 0x0a])])
      expect(code(() => openCheckpoint(bad, key))).toBe("AUDIT_NOTE_MALFORMED");
    expect(code(() => parseCheckpointText(`${ORIGIN}\n042\n${ROOT.toString("base64")}\n`))).toBe("AUDIT_NOTE_MALFORMED");
    expect(code(() => parseVerifierKey("name+00000000+AQ=="))).toBe("AUDIT_NOTE_MALFORMED");
    expect(code(() => parseVerifierKey(formatVerifierKey(signer.name, signer.publicKey).replace(/\+[0-9a-f]{8}\+/, "+00000000+")))).toBe("AUDIT_NOTE_MALFORMED");
  });

  it("keeps signatures by other keys (a witness's cosignature) and still finds its own", async () => {
    const signer = testSigner(ORIGIN);
    const note = await signCheckpoint({ origin: ORIGIN, size: 1, rootHash: ROOT }, signer);
    const cosigned = `${note}\u2014 witness.example/w1 ${Buffer.alloc(72, 1).toString("base64")}\n`;
    expect(openCheckpoint(cosigned, parseVerifierKey(formatVerifierKey(signer.name, signer.publicKey))).size).toBe(1);
  });
});
