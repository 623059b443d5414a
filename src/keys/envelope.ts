import { randomBytes } from "node:crypto";
import { aes256GcmOpen, aes256GcmSeal } from "../crypto/index.js";
import { MoatError } from "../errors.js";
import type { Kek, KekProvider } from "./kek.js";

/**
 * Envelope encryption (all integers big-endian). One layout, two format versions:
 *
 *   "MEV" | format u8 | kekIdLength u8 | kekId utf8 | kekVersion u32 | wrappedLength u16 | wrappedDek
 *   | nonce (12) | tag (16) | ciphertext
 *
 * A fresh 256-bit data key (DEK) per secret encrypts the plaintext with AES-256-GCM; the KEK named
 * in the header wraps the DEK. The caller's AAD names the purpose and the row
 * (`ca-key:issuing:<serial>`), so a ciphertext copied to another row fails to open.
 *
 * Format 2 (written now) makes the DEK rewrappable without the plaintext or the caller's AAD, which
 * is what KEK rotation needs:
 *   - DEK wrap AAD  = "moat-dek\0" | 0x02 | nonce   (binds the wrapped DEK to this envelope)
 *   - payload AAD   = "MEV" | 0x02 | "\0" | caller's AAD   (binds the ciphertext to purpose and row)
 * A header edited to name another KEK fails at unwrap; a wrapped DEK swapped in from another
 * envelope fails at unwrap (other nonce); an envelope moved to another row fails the payload tag.
 *
 * Format 1 (read only) bound the caller's AAD into the DEK wrap and the whole header into the
 * payload AAD, so it cannot be rewrapped; rotation reports such envelopes instead.
 */
const MAGIC = Buffer.from("MEV");
const FORMAT_V1 = 1;
const FORMAT_V2 = 2;
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

/** Parses and checks the header; throws ENVELOPE_MALFORMED for anything that is not a Moat envelope. */
export function parseEnvelopeHeader(blob: Uint8Array): EnvelopeHeader {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const fail = (why: string) => new MoatError("ENVELOPE_MALFORMED", `encrypted envelope: ${why}`);
  if (buf.length < 4 || !buf.subarray(0, 3).equals(MAGIC)) throw fail("bad magic (not a Moat envelope)");
  const formatVersion = buf[3]!;
  if (formatVersion !== FORMAT_V1 && formatVersion !== FORMAT_V2) throw fail(`unsupported format version ${formatVersion}`);
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

/** True when `blob` starts like a Moat envelope (cheap check for scanners). */
export function looksLikeEnvelope(blob: Uint8Array): boolean {
  return blob.length >= 4 && blob[0] === MAGIC[0] && blob[1] === MAGIC[1] && blob[2] === MAGIC[2] && (blob[3] === FORMAT_V1 || blob[3] === FORMAT_V2);
}

function dekAadV1(aad: string): Buffer {
  return Buffer.concat([Buffer.from("moat-dek\0"), Buffer.from(aad, "utf8")]);
}

function dekAadV2(nonce: Buffer): Buffer {
  return Buffer.concat([Buffer.from("moat-dek\0"), Buffer.from([FORMAT_V2]), nonce]);
}

function payloadAadV1(header: Buffer, aad: string): Buffer {
  return Buffer.concat([header, Buffer.from("\0"), Buffer.from(aad, "utf8")]);
}

function payloadAadV2(aad: string): Buffer {
  return Buffer.concat([MAGIC, Buffer.from([FORMAT_V2, 0]), Buffer.from(aad, "utf8")]);
}

function buildHeader(kekId: string, kekVersion: number, wrappedDek: Buffer): Buffer {
  const id = Buffer.from(kekId, "utf8");
  if (id.length > 255) throw new MoatError("INTERNAL", "KEK id too long");
  const fixed = Buffer.alloc(1 + id.length + 4 + 2);
  fixed[0] = id.length;
  id.copy(fixed, 1);
  fixed.writeUInt32BE(kekVersion, 1 + id.length);
  fixed.writeUInt16BE(wrappedDek.length, 1 + id.length + 4);
  return Buffer.concat([MAGIC, Buffer.from([FORMAT_V2]), fixed, wrappedDek]);
}

/** Seals and opens secrets with envelope encryption under the provider's KEK. */
export class Envelope {
  constructor(private readonly provider: KekProvider) {}

  get providerKind(): string {
    return this.provider.kind;
  }

  /** The provider behind this envelope (rotation and status use it). */
  get kekProvider(): KekProvider {
    return this.provider;
  }

  async seal(plaintext: Uint8Array, aad: string): Promise<Buffer> {
    const kek = await this.provider.current();
    const dek = randomBytes(32);
    try {
      const nonce = randomBytes(NONCE);
      const header = buildHeader(kek.id, kek.version, await kek.wrap(dek, dekAadV2(nonce)));
      const sealed = aes256GcmSeal(dek, nonce, plaintext, payloadAadV2(aad));
      // The envelope stores the tag before the ciphertext (the AEAD returns ciphertext || tag).
      const tagAt = sealed.length - TAG;
      return Buffer.concat([header, nonce, sealed.subarray(tagAt), sealed.subarray(0, tagAt)]);
    } finally {
      dek.fill(0);
    }
  }

  async open(blob: Uint8Array, aad: string): Promise<Buffer> {
    const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    const header = parseEnvelopeHeader(buf);
    const kek = await this.provider.get(header.kekId, header.kekVersion);
    const nonce = buf.subarray(header.length, header.length + NONCE);
    const v2 = header.formatVersion === FORMAT_V2;
    const dek = await kek.unwrap(Buffer.from(header.wrappedDek), v2 ? dekAadV2(nonce) : dekAadV1(aad));
    try {
      const tag = buf.subarray(header.length + NONCE, header.length + NONCE + TAG);
      const ciphertext = buf.subarray(header.length + NONCE + TAG);
      const opened = aes256GcmOpen(dek, nonce, Buffer.concat([ciphertext, tag]), v2 ? payloadAadV2(aad) : payloadAadV1(buf.subarray(0, header.length), aad));
      if (!opened) throw new Error("the AES-256-GCM tag did not verify");
      return opened;
    } catch (error) {
      throw new MoatError("ENVELOPE_DECRYPT_FAILED", `envelope for '${aad}' failed authentication: tampered, moved from another row, or wrong key`, { cause: error });
    } finally {
      dek.fill(0);
    }
  }

  /**
   * Rewraps the data key of a format-2 envelope under `target` (default: the current KEK), leaving
   * nonce, tag and ciphertext as they are: the plaintext is never decrypted. Returns null when the
   * envelope is already wrapped by the target. Format-1 envelopes throw ENVELOPE_MALFORMED (they need
   * their owner's AAD to be re-sealed).
   */
  async rewrap(blob: Uint8Array, target?: Kek): Promise<Buffer | null> {
    const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    const header = parseEnvelopeHeader(buf);
    const kek = target ?? (await this.provider.current());
    if (header.kekId === kek.id && header.kekVersion === kek.version) return null;
    if (header.formatVersion !== FORMAT_V2) throw new MoatError("ENVELOPE_MALFORMED", "a format-1 envelope cannot be rewrapped without its purpose; its owner must re-seal it");
    const nonce = buf.subarray(header.length, header.length + NONCE);
    const old = await this.provider.get(header.kekId, header.kekVersion);
    const dek = await old.unwrap(Buffer.from(header.wrappedDek), dekAadV2(nonce));
    try {
      const newHeader = buildHeader(kek.id, kek.version, await kek.wrap(dek, dekAadV2(nonce)));
      return Buffer.concat([newHeader, buf.subarray(header.length)]);
    } finally {
      dek.fill(0);
    }
  }
}
