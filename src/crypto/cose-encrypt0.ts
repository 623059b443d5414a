import { randomBytes } from "node:crypto";
import { aes256GcmOpen, aes256GcmSeal } from "./aead.js";
import { CborTag, encodeCbor, encodeContextStructure } from "./cbor.js";
import {
  checkCrit,
  checkTopicHint,
  encodeProtected,
  externalAadBytes,
  kidOf,
  parseCose,
  sequenceOf,
  sequenceValue,
  topicHint,
  algOf,
  type HeaderMap,
} from "./cose-message.js";
import { ALG, A256GCM_IV_BYTES, COSE_TAG, HEADER } from "./cose-constants.js";
import { kidBytes, type SymmetricKeyResolver } from "./keyring.js";
import type { ReplayGuard } from "./replay-window.js";
import { MoatError } from "../errors.js";

const WHAT = "COSE_Encrypt0";

/**
 * Random IVs drawn from a pool filled by the CSPRNG in bulk: one system call per 512 messages
 * instead of one per message. Each IV is used once and the pool is never reused.
 */
const IV_POOL_IVS = 512;
let ivPool = Buffer.alloc(0);
let ivOffset = 0;
function nextIv(): Buffer {
  if (ivOffset + A256GCM_IV_BYTES > ivPool.length) {
    ivPool = randomBytes(A256GCM_IV_BYTES * IV_POOL_IVS);
    ivOffset = 0;
  }
  const iv = Buffer.from(ivPool.subarray(ivOffset, ivOffset + A256GCM_IV_BYTES));
  ivPool.fill(0, ivOffset, ivOffset + A256GCM_IV_BYTES);
  ivOffset += A256GCM_IV_BYTES;
  return iv;
}

export interface Encrypt0Options {
  /** The 32-byte A256GCM content key. */
  key: Uint8Array;
  /** Key id placed in the unprotected header (label 4), so the receiver picks the key (rotation). */
  kid: Uint8Array | string;
  /** Per-message sequence number (protected, private label -65537, marked critical). */
  seq?: number;
  /** External AAD (RFC 9052 §4.3): the MQTT topic, so a message replayed to another topic fails. */
  externalAad?: Uint8Array | string;
  /** Adds the 8-byte topic hint so a wrong topic is reported as such (default: when AAD is given). */
  topicHint?: boolean;
  /** For tests only: a fixed IV. Never reuse an IV with the same key. */
  iv?: Uint8Array;
}

/**
 * Seals `plaintext` as a tagged COSE_Encrypt0 message (RFC 9052 §5.2) with A256GCM (RFC 9053 §4.1):
 * protected {alg: 3, crit: [-65537], -65537: seq, -65538: topic hint}, unprotected {kid, iv}.
 */
export function encrypt0(plaintext: Uint8Array, options: Encrypt0Options): Buffer {
  const kid = kidBytes(options.kid);
  const aad = externalAadBytes(options.externalAad);
  const protectedHeader: HeaderMap = new Map<number, unknown>([[HEADER.alg, ALG.A256GCM]]);
  if (options.seq !== undefined) {
    protectedHeader.set(HEADER.crit, [HEADER.moatSequence]);
    protectedHeader.set(HEADER.moatSequence, sequenceValue(options.seq));
  }
  if (options.topicHint ?? options.externalAad !== undefined) protectedHeader.set(HEADER.moatTopicHint, topicHint(aad));
  const protectedBytes = encodeProtected(protectedHeader);
  const iv = options.iv ? Buffer.from(options.iv) : nextIv();
  const ciphertext = aes256GcmSeal(options.key, iv, plaintext, encStructure(protectedBytes, aad));
  const unprotected: HeaderMap = new Map<number, unknown>([
    [HEADER.kid, kid],
    [HEADER.iv, iv],
  ]);
  return encodeCbor(new CborTag([protectedBytes, unprotected, ciphertext], COSE_TAG.Encrypt0));
}

export interface Decrypt0Options {
  /** Content keys by key id (a `Keyring`). */
  keys: SymmetricKeyResolver;
  /** The external AAD the receiver expects: the topic the message arrived on. */
  externalAad?: Uint8Array | string;
  /** Per-key-id replay windows; when given, every message must carry a sequence number. */
  replay?: ReplayGuard;
  /** Refuse messages without a sequence number (default: true when `replay` is given). */
  requireSequence?: boolean;
}

export interface Decrypted {
  plaintext: Buffer;
  kid: Buffer;
  seq: number | undefined;
}

/**
 * Opens a COSE_Encrypt0 message. Checks in this order, each with its own error code: structure
 * (COSE_MALFORMED), algorithm allow-list (COSE_ALG_UNSUPPORTED), key id (COSE_KID_UNKNOWN), topic
 * (COSE_TOPIC_MISMATCH), the replay window (COSE_REPLAYED), the AEAD tag (COSE_DECRYPT_FAILED).
 * The replay window is only advanced after the tag verifies.
 */
export function decrypt0(message: Uint8Array, options: Decrypt0Options): Decrypted {
  const parsed = parseCose(message, COSE_TAG.Encrypt0, 3, WHAT);
  algOf(parsed, [ALG.A256GCM], WHAT);
  checkCrit(parsed, [HEADER.moatSequence], WHAT);
  const ciphertext = parsed.rest[0];
  if (!Buffer.isBuffer(ciphertext)) throw new MoatError("COSE_MALFORMED", `${WHAT}: the ciphertext is not a byte string`);
  const iv = parsed.unprotectedHeader.get(HEADER.iv) ?? parsed.protectedHeader.get(HEADER.iv);
  if (parsed.unprotectedHeader.has(HEADER.partialIv) || parsed.protectedHeader.has(HEADER.partialIv))
    throw new MoatError("COSE_MALFORMED", `${WHAT}: Partial IV is not supported (no context IV is agreed)`);
  if (!Buffer.isBuffer(iv) || iv.length !== A256GCM_IV_BYTES) throw new MoatError("COSE_MALFORMED", `${WHAT}: the IV is not a ${A256GCM_IV_BYTES}-byte string`);
  const kid = kidOf(parsed, WHAT);
  if (!kid) throw new MoatError("COSE_KID_UNKNOWN", `${WHAT}: the message has no key id`);
  const key = options.keys.get(kid);
  if (!key) throw new MoatError("COSE_KID_UNKNOWN", `${WHAT}: no key with id '${printableKid(kid)}'`, { detail: { kid: kid.toString("hex") } });
  const aad = externalAadBytes(options.externalAad);
  checkTopicHint(parsed, aad, WHAT);
  const seq = sequenceOf(parsed, WHAT);
  if (seq === undefined && (options.requireSequence ?? options.replay !== undefined))
    throw new MoatError("COSE_SEQUENCE_MISSING", `${WHAT}: the message has no sequence number, so it cannot be checked for replay`);
  if (seq !== undefined && options.replay) {
    const verdict = options.replay.check(kid, seq);
    if (verdict !== "fresh") options.replay.accept(kid, seq); // throws COSE_REPLAYED with the reason
  }
  const plaintext = aes256GcmOpen(key, iv, ciphertext, encStructure(parsed.protectedBytes, aad));
  if (!plaintext)
    throw new MoatError("COSE_DECRYPT_FAILED", `${WHAT}: authentication failed: the ciphertext, tag or protected header was altered${parsed.protectedHeader.has(HEADER.moatTopicHint) ? "" : ", or the topic differs"}`);
  if (seq !== undefined && options.replay) options.replay.accept(kid, seq);
  return { plaintext, kid, seq };
}

/** Enc_structure = ["Encrypt0", protected, external_aad] (RFC 9052 §5.3). */
function encStructure(protectedBytes: Buffer, externalAad: Buffer): Buffer {
  return encodeContextStructure("Encrypt0", protectedBytes, externalAad);
}

export function printableKid(kid: Buffer): string {
  return /^[\x20-\x7e]+$/.test(kid.toString("latin1")) ? kid.toString("latin1") : kid.toString("hex");
}
