import { createHash } from "node:crypto";
import { CborTag, decodeCanonicalCbor, encodeCbor } from "./cbor.js";
import { HEADER, MAX_COSE_MESSAGE_BYTES, TOPIC_HINT_BYTES } from "./cose-constants.js";
import { MoatError } from "../errors.js";

export type HeaderMap = Map<number, unknown>;

/** A COSE message split into its parts, headers checked (RFC 9052 §3). */
export interface ParsedCose {
  protectedBytes: Buffer;
  protectedHeader: HeaderMap;
  unprotectedHeader: HeaderMap;
  /** The remaining array items (ciphertext, or payload and signature). */
  rest: unknown[];
}

const malformed = (what: string, why: string) => new MoatError("COSE_MALFORMED", `${what}: ${why}`);

/** Encodes a header map; an empty protected map is the empty bstr (RFC 9052 §3). */
export function encodeProtected(header: HeaderMap): Buffer {
  return header.size === 0 ? Buffer.alloc(0) : encodeCbor(header);
}

/**
 * Splits a COSE message of the given type and length. Only tagged messages are accepted: the tag is
 * what says which structure (and so which Enc_/Sig_structure context) the bytes are, so an untagged
 * message could be taken for another type (RFC 9052 §2 leaves untagged use to the application, and
 * Moat's application does not use it).
 */
export function parseCose(bytes: Uint8Array, tag: number, arity: number, what: string): ParsedCose {
  if (!(bytes instanceof Uint8Array)) throw malformed(what, "expected bytes");
  if (bytes.length > MAX_COSE_MESSAGE_BYTES) throw malformed(what, `message of ${bytes.length} bytes is over the ${MAX_COSE_MESSAGE_BYTES}-byte limit`);
  const tagged = decodeCanonicalCbor(bytes, what, "COSE_MALFORMED");
  if (!(tagged instanceof CborTag)) throw malformed(what, `the message is untagged; only a tagged ${what} (CBOR tag ${tag}) is accepted`);
  if (tagged.tag !== tag) throw malformed(what, `CBOR tag ${String(tagged.tag)} is not the ${what} tag ${tag}`);
  const item = tagged.value;
  if (!Array.isArray(item) || item.length !== arity) throw malformed(what, `expected an array of ${arity} items`);
  const [protectedBytes, unprotectedHeader, ...rest] = item as unknown[];
  if (!Buffer.isBuffer(protectedBytes)) throw malformed(what, "the protected header is not a byte string");
  let protectedHeader: HeaderMap = new Map();
  if (protectedBytes.length > 0) {
    const decoded = decodeCanonicalCbor(protectedBytes, `${what} protected header`, "COSE_MALFORMED");
    if (!(decoded instanceof Map)) throw malformed(what, "the protected header is not a map");
    protectedHeader = checkLabels(decoded, what);
  }
  if (!(unprotectedHeader instanceof Map)) throw malformed(what, "the unprotected header is not a map");
  const unprotected = checkLabels(unprotectedHeader, what);
  for (const label of protectedHeader.keys())
    if (unprotected.has(label)) throw malformed(what, `header label ${label} appears in both buckets`);
  return { protectedBytes, protectedHeader, unprotectedHeader: unprotected, rest };
}

function checkLabels(map: Map<unknown, unknown>, what: string): HeaderMap {
  for (const label of map.keys())
    if (typeof label !== "number" && typeof label !== "string") throw malformed(what, "a header label is neither an integer nor a text string");
  return map as HeaderMap;
}

/** The protected `alg`, required (RFC 9052 §3.1: alg SHOULD be protected; Moat requires it). */
export function algOf(parsed: ParsedCose, allowed: readonly number[], what: string): number {
  const alg = parsed.protectedHeader.get(HEADER.alg) ?? parsed.unprotectedHeader.get(HEADER.alg);
  if (alg === undefined) throw malformed(what, "no alg header");
  if (typeof alg !== "number" || !allowed.includes(alg))
    throw new MoatError("COSE_ALG_UNSUPPORTED", `${what}: algorithm ${String(alg)} is not allowed (allowed: ${allowed.join(", ")})`);
  if (!parsed.protectedHeader.has(HEADER.alg)) throw malformed(what, "alg must be in the protected header");
  return alg;
}

/** The key id from the unprotected (or protected) header, a non-empty bstr. */
export function kidOf(parsed: ParsedCose, what: string): Buffer | undefined {
  const kid = parsed.unprotectedHeader.get(HEADER.kid) ?? parsed.protectedHeader.get(HEADER.kid);
  if (kid === undefined) return undefined;
  if (!Buffer.isBuffer(kid) || kid.length === 0) throw malformed(what, "kid is not a non-empty byte string");
  return kid;
}

/** The Moat sequence number from the protected header, if present. */
export function sequenceOf(parsed: ParsedCose, what: string): number | undefined {
  if (parsed.unprotectedHeader.has(HEADER.moatSequence)) throw malformed(what, "the sequence number must be in the protected header");
  const seq = parsed.protectedHeader.get(HEADER.moatSequence);
  if (seq === undefined) return undefined;
  const value = typeof seq === "bigint" && seq <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(seq) : seq;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw malformed(what, "the sequence number is not an unsigned integer below 2^53");
  return value;
}

/**
 * Rejects critical headers Moat does not understand (RFC 9052 §3.1 `crit`): a sender that marks a
 * label critical asks receivers to refuse the message rather than ignore it.
 */
export function checkCrit(parsed: ParsedCose, understood: readonly number[], what: string): void {
  const crit = parsed.protectedHeader.get(HEADER.crit);
  if (parsed.unprotectedHeader.has(HEADER.crit)) throw malformed(what, "crit must be in the protected header");
  if (crit === undefined) return;
  if (!Array.isArray(crit) || crit.length === 0) throw malformed(what, "crit is not a non-empty array");
  for (const label of crit) {
    if (!understood.includes(label as number)) throw malformed(what, `critical header ${String(label)} is not understood`);
    if (!parsed.protectedHeader.has(label as number)) throw malformed(what, `critical header ${String(label)} is missing`);
  }
}

/** A sequence number as CBOR wants it: numbers above 2^32 as bigint so they stay integers. */
export function sequenceValue(seq: number): number | bigint {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new MoatError("COSE_MALFORMED", `sequence number must be a non-negative safe integer, got ${seq}`);
  return seq > 0xffffffff ? BigInt(seq) : seq;
}

/** External AAD bytes: a topic string as UTF-8, bytes as given, nothing as the empty bstr. */
export function externalAadBytes(aad: Uint8Array | string | undefined): Buffer {
  if (aad === undefined) return Buffer.alloc(0);
  return typeof aad === "string" ? Buffer.from(aad, "utf8") : Buffer.from(aad);
}

const hintCache = new Map<string, Buffer>();
const HINT_CACHE_SIZE = 256;

/** First 8 bytes of SHA-256 of the external AAD (the topic), for the topic hint header. */
export function topicHint(aad: Buffer): Buffer {
  // A device publishes to few topics: remember the last few hints instead of hashing every message.
  const cacheKey = aad.toString("latin1");
  const cached = hintCache.get(cacheKey);
  if (cached) return cached;
  const hint = createHash("sha256").update(aad).digest().subarray(0, TOPIC_HINT_BYTES);
  if (hintCache.size >= HINT_CACHE_SIZE) hintCache.delete(hintCache.keys().next().value!);
  hintCache.set(cacheKey, hint);
  return hint;
}

/** Compares the message's topic hint (if any) with the receiver's topic. */
export function checkTopicHint(parsed: ParsedCose, aad: Buffer, what: string): void {
  const hint = parsed.protectedHeader.get(HEADER.moatTopicHint);
  if (hint === undefined) return;
  if (!Buffer.isBuffer(hint) || hint.length !== TOPIC_HINT_BYTES) throw malformed(what, "the topic hint is not an 8-byte string");
  if (!hint.equals(topicHint(aad)))
    throw new MoatError("COSE_TOPIC_MISMATCH", `${what} was sealed for a different topic (external AAD) than the one it arrived on`);
}
