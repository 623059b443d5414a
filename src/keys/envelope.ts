import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { MoatError } from "../errors.js";
import type { KekProvider } from "./kek.js";

/**
 * Envelope encryption, format v1 (all integers big-endian):
 *
 *   "MEV" | 0x01 | kekIdLength u8 | kekId utf8 | kekVersion u32 | wrappedLength u16 | wrappedDek
 *   | nonce (12) | tag (16) | ciphertext
 *
 * A fresh 256-bit data key per secret encrypts the plaintext with AES-256-GCM. The data key is wrapped
 * by the KEK with AAD "moat-dek" + the caller's AAD; the payload's AAD is the whole header plus the
 * caller's AAD. The caller's AAD names the purpose and the row (`ca-key:issuing:<serial>`), so a
 * ciphertext copied to another row, or a header edited to point at another KEK, fails to open.
 */
const MAGIC = Buffer.from("MEV");
const FORMAT_VERSION = 1;
const NONCE = 12;
const TAG = 16;

export interface EnvelopeHeader {
  formatVersion: number;
  kekId: string;
  kekVersion: number;
  wrappedDek: Buffer;
  /** Byte length of the header (everything before the nonce). */
  length: number;
}

export function parseEnvelopeHeader(blob: Uint8Array): EnvelopeHeader {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const fail = (why: string) => new MoatError("ENVELOPE_MALFORMED", `encrypted envelope: ${why}`);
  if (buf.length < 4 || !buf.subarray(0, 3).equals(MAGIC)) throw fail("bad magic (not a Moat envelope)");
  const formatVersion = buf[3]!;
  if (formatVersion !== FORMAT_VERSION) throw fail(`unsupported format version ${formatVersion}`);
  let at = 4;
  const need = (n: number) => {
    if (at + n > buf.length) throw fail("truncated");
  };
  need(1);
  const idLength = buf[at]!;
  at += 1;
  need(idLength + 4 + 2);
  const kekId = buf.subarray(at, at + idLength).toString("utf8");
  at += idLength;
  const kekVersion = buf.readUInt32BE(at);
  at += 4;
  const wrappedLength = buf.readUInt16BE(at);
  at += 2;
  need(wrappedLength + NONCE + TAG);
  const wrappedDek = buf.subarray(at, at + wrappedLength);
  at += wrappedLength;
  return { formatVersion, kekId, kekVersion, wrappedDek, length: at };
}

function dekAad(aad: string): Buffer {
  return Buffer.concat([Buffer.from("moat-dek\0"), Buffer.from(aad, "utf8")]);
}

function payloadAad(header: Buffer, aad: string): Buffer {
  return Buffer.concat([header, Buffer.from("\0"), Buffer.from(aad, "utf8")]);
}

function buildHeader(kekId: string, kekVersion: number, wrappedDek: Buffer): Buffer {
  const id = Buffer.from(kekId, "utf8");
  if (id.length > 255) throw new MoatError("INTERNAL", "KEK id too long");
  const fixed = Buffer.alloc(1 + id.length + 4 + 2);
  fixed[0] = id.length;
  id.copy(fixed, 1);
  fixed.writeUInt32BE(kekVersion, 1 + id.length);
  fixed.writeUInt16BE(wrappedDek.length, 1 + id.length + 4);
  return Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION]), fixed, wrappedDek]);
}

/** Seals and opens secrets with envelope encryption under the provider's KEK. */
export class Envelope {
  constructor(private readonly provider: KekProvider) {}

  get providerKind(): string {
    return this.provider.kind;
  }

  async seal(plaintext: Uint8Array, aad: string): Promise<Buffer> {
    const kek = await this.provider.current();
    const dek = randomBytes(32);
    try {
      const header = buildHeader(kek.id, kek.version, await kek.wrap(dek, dekAad(aad)));
      const nonce = randomBytes(NONCE);
      const cipher = createCipheriv("aes-256-gcm", dek, nonce);
      cipher.setAAD(payloadAad(header, aad));
      const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return Buffer.concat([header, nonce, cipher.getAuthTag(), ciphertext]);
    } finally {
      dek.fill(0);
    }
  }

  async open(blob: Uint8Array, aad: string): Promise<Buffer> {
    const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    const header = parseEnvelopeHeader(buf);
    const kek = await this.provider.get(header.kekId, header.kekVersion);
    const dek = await kek.unwrap(Buffer.from(header.wrappedDek), dekAad(aad));
    try {
      const nonce = buf.subarray(header.length, header.length + NONCE);
      const tag = buf.subarray(header.length + NONCE, header.length + NONCE + TAG);
      const decipher = createDecipheriv("aes-256-gcm", dek, nonce);
      decipher.setAAD(payloadAad(buf.subarray(0, header.length), aad));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(buf.subarray(header.length + NONCE + TAG)), decipher.final()]);
    } catch (error) {
      throw new MoatError("ENVELOPE_DECRYPT_FAILED", `envelope for '${aad}' failed authentication: tampered, moved from another row, or wrong key`, { cause: error });
    } finally {
      dek.fill(0);
    }
  }
}
