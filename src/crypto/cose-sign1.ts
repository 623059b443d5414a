import { sign as nodeSign, verify as nodeVerify, type KeyObject } from "node:crypto";
import { CborTag, encodeCbor, encodeContextStructure } from "./cbor.js";
import { algOf, checkCrit, checkTopicHint, encodeProtected, externalAadBytes, kidOf, parseCose, sequenceOf, sequenceValue, topicHint, type HeaderMap } from "./cose-message.js";
import { ALG, COSE_TAG, HEADER } from "./cose-constants.js";
import { printableKid } from "./cose-encrypt0.js";
import { kidBytes } from "./keyring.js";
import type { ReplayGuard } from "./replay-window.js";
import { MoatError } from "../errors.js";

const WHAT = "COSE_Sign1";

/** The signature algorithms Moat accepts for COSE_Sign1 (RFC 9053 §2.1 ES256, §2.2 EdDSA). */
export type SignatureAlg = typeof ALG.ES256 | typeof ALG.EdDSA;

/** Public keys by key id, for verification. */
export interface PublicKeyResolver {
  get(kid: Uint8Array): KeyObject | undefined;
}

export interface Sign1Options {
  /** P-256 (→ ES256) or Ed25519 (→ EdDSA) private key. */
  key: KeyObject;
  kid?: Uint8Array | string;
  seq?: number;
  /** External AAD, e.g. the MQTT topic of a command. */
  externalAad?: Uint8Array | string;
  topicHint?: boolean;
}

/** The COSE algorithm that fits a key; anything else is refused (algorithm allow-list). */
export function signatureAlgFor(key: KeyObject): SignatureAlg {
  if (key.asymmetricKeyType === "ed25519") return ALG.EdDSA;
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return ALG.ES256;
  throw new MoatError("CRYPTO_KEY_INVALID", `COSE_Sign1 keys must be P-256 (ES256) or Ed25519 (EdDSA), got ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ""}`);
}

/** Signs `payload` as a tagged COSE_Sign1 message (RFC 9052 §4.2) with ES256 or EdDSA. */
export function sign1(payload: Uint8Array, options: Sign1Options): Buffer {
  if (options.key.type !== "private") throw new MoatError("CRYPTO_KEY_INVALID", "COSE_Sign1 needs a private key");
  const alg = signatureAlgFor(options.key);
  const aad = externalAadBytes(options.externalAad);
  const protectedHeader: HeaderMap = new Map<number, unknown>([[HEADER.alg, alg]]);
  if (options.seq !== undefined) {
    protectedHeader.set(HEADER.crit, [HEADER.moatSequence]);
    protectedHeader.set(HEADER.moatSequence, sequenceValue(options.seq));
  }
  if (options.topicHint ?? options.externalAad !== undefined) protectedHeader.set(HEADER.moatTopicHint, topicHint(aad));
  const protectedBytes = encodeProtected(protectedHeader);
  const body = Buffer.from(payload);
  const signature = signBytes(alg, options.key, sigStructure(protectedBytes, aad, body));
  const unprotected: HeaderMap = new Map();
  if (options.kid !== undefined) unprotected.set(HEADER.kid, kidBytes(options.kid));
  return encodeCbor(new CborTag([protectedBytes, unprotected, body, signature], COSE_TAG.Sign1));
}

export interface Verify1Options {
  /** Verification keys by key id; or `key` for a single known signer. */
  keys?: PublicKeyResolver;
  key?: KeyObject;
  externalAad?: Uint8Array | string;
  replay?: ReplayGuard;
  requireSequence?: boolean;
}

export interface Verified {
  payload: Buffer;
  kid: Buffer | undefined;
  seq: number | undefined;
  alg: SignatureAlg;
}

/** Verifies a COSE_Sign1 message and returns its payload; each failure has its own error code. */
export function verify1(message: Uint8Array, options: Verify1Options): Verified {
  const parsed = parseCose(message, COSE_TAG.Sign1, 4, WHAT);
  const alg = algOf(parsed, [ALG.ES256, ALG.EdDSA], WHAT) as SignatureAlg;
  checkCrit(parsed, [HEADER.moatSequence], WHAT);
  const [payload, signature] = parsed.rest;
  if (!Buffer.isBuffer(payload)) throw new MoatError("COSE_MALFORMED", `${WHAT}: detached or non-bstr payloads are not supported`);
  if (!Buffer.isBuffer(signature)) throw new MoatError("COSE_MALFORMED", `${WHAT}: the signature is not a byte string`);
  const kid = kidOf(parsed, WHAT);
  let key = options.key;
  if (options.keys) {
    if (!kid) throw new MoatError("COSE_KID_UNKNOWN", `${WHAT}: the message has no key id`);
    key = options.keys.get(kid);
    if (!key) throw new MoatError("COSE_KID_UNKNOWN", `${WHAT}: no verification key with id '${printableKid(kid)}'`, { detail: { kid: kid.toString("hex") } });
  }
  if (!key) throw new TypeError("verify1 needs `keys` or `key`");
  if (signatureAlgFor(key) !== alg) throw new MoatError("COSE_ALG_UNSUPPORTED", `${WHAT}: algorithm ${alg} does not match the verification key`);
  const aad = externalAadBytes(options.externalAad);
  checkTopicHint(parsed, aad, WHAT);
  const seq = sequenceOf(parsed, WHAT);
  const replayKid = kid ?? Buffer.from("-");
  if (seq === undefined && (options.requireSequence ?? options.replay !== undefined))
    throw new MoatError("COSE_SEQUENCE_MISSING", `${WHAT}: the message has no sequence number, so it cannot be checked for replay`);
  if (seq !== undefined && options.replay && options.replay.check(replayKid, seq) !== "fresh") options.replay.accept(replayKid, seq);
  if (!verifyBytes(alg, key, sigStructure(parsed.protectedBytes, aad, payload), signature))
    throw new MoatError("COSE_SIGNATURE_INVALID", `${WHAT}: the signature does not verify: payload, protected header or topic altered, or wrong key`);
  if (seq !== undefined && options.replay) options.replay.accept(replayKid, seq);
  return { payload, kid, seq, alg };
}

/** Sig_structure = ["Signature1", body_protected, external_aad, payload] (RFC 9052 §4.4). */
function sigStructure(protectedBytes: Buffer, aad: Buffer, payload: Buffer): Buffer {
  return encodeContextStructure("Signature1", protectedBytes, aad, payload);
}

function signBytes(alg: SignatureAlg, key: KeyObject, data: Buffer): Buffer {
  // ES256 signatures are r || s, 32 bytes each (RFC 9053 §2.1), not DER.
  return alg === ALG.ES256 ? nodeSign("sha256", data, { key, dsaEncoding: "ieee-p1363" }) : nodeSign(null, data, key);
}

function verifyBytes(alg: SignatureAlg, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  if (alg === ALG.ES256) return signature.length === 64 && nodeVerify("sha256", data, { key, dsaEncoding: "ieee-p1363" }, signature);
  return signature.length === 64 && nodeVerify(null, data, key, signature);
}
