import { diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from "node:crypto";
import { encodeCbor } from "./cbor.js";
import { ALG, A256GCM_KEY_BYTES, HEADER } from "./cose-constants.js";
import { kidBytes } from "./keyring.js";
import { MoatError } from "../errors.js";

/** Curves for the device ↔ application key agreement. */
export type AgreementCurve = "P-256" | "X25519";

/** A fresh agreement key pair (the device's or the application's long-term E2E key). */
export function generateAgreementKeyPair(curve: AgreementCurve): { privateKey: KeyObject; publicKey: KeyObject } {
  return curve === "X25519" ? generateKeyPairSync("x25519") : generateKeyPairSync("ec", { namedCurve: "prime256v1" });
}

/** Which agreement curve a key is on; other keys are refused. */
export function agreementCurveOf(key: KeyObject): AgreementCurve {
  if (key.asymmetricKeyType === "x25519") return "X25519";
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "P-256";
  throw new MoatError("CRYPTO_KEY_INVALID", `E2E agreement keys must be P-256 or X25519, got ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ""}`);
}

export interface DeviceKeyContext {
  /** This party's private agreement key (device or application). */
  privateKey: KeyObject;
  /** The other party's public agreement key. */
  peerPublicKey: KeyObject;
  /** PartyU identity: the device id. */
  deviceId: string;
  /** PartyV identity: the application (backend consumer) id. */
  applicationId: string;
  /** The key id the derived key is used under; a new kid gives a new key (rotation). */
  kid: Uint8Array | string;
  /** Optional HKDF salt (RFC 9053 §5.1, header -20). */
  salt?: Uint8Array;
}

/**
 * Derives the per-device A256GCM content key both sides compute on their own: static-static ECDH
 * between the device key and the application key, then HKDF-SHA256 (RFC 5869) with the COSE
 * KDF context as `info` (RFC 9053 §5.2, as ECDH-SS + HKDF-256 in §6.3 uses it):
 *
 *   [3 (A256GCM), [deviceId, nil, nil], [applicationId, nil, nil], [256, <<{1: -27}>>, kid]]
 *
 * The party identities bind the key to this device/application pair; the kid in SuppPubInfo.other
 * makes each key generation distinct, so rotation is "derive again under a new kid".
 */
export function deriveDeviceKey(context: DeviceKeyContext): Buffer {
  const ours = agreementCurveOf(context.privateKey);
  const theirs = agreementCurveOf(context.peerPublicKey);
  if (context.privateKey.type !== "private") throw new MoatError("CRYPTO_KEY_INVALID", "deriveDeviceKey needs this party's private key");
  if (ours !== theirs) throw new MoatError("CRYPTO_KEY_INVALID", `the two agreement keys are on different curves (${ours} and ${theirs})`);
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: context.privateKey, publicKey: context.peerPublicKey });
  } catch (error) {
    throw new MoatError("CRYPTO_KEY_INVALID", "the key agreement failed (invalid peer public key)", { cause: error });
  }
  // An all-zero X25519 output means a small-order peer key (RFC 7748 §6.1): refuse it.
  if (shared.every((byte) => byte === 0)) throw new MoatError("CRYPTO_KEY_INVALID", "the peer public key is of small order");
  const info = kdfContext(context.deviceId, context.applicationId, kidBytes(context.kid));
  const key = Buffer.from(hkdfSync("sha256", shared, context.salt ?? Buffer.alloc(0), info, A256GCM_KEY_BYTES));
  shared.fill(0);
  return key;
}

/** COSE_KDF_Context, RFC 9053 §5.2. */
export function kdfContext(deviceId: string, applicationId: string, kid: Buffer): Buffer {
  const recipientProtected = encodeCbor(new Map([[HEADER.alg, ALG.ECDH_SS_HKDF_256]]));
  return encodeCbor([
    ALG.A256GCM,
    [Buffer.from(deviceId, "utf8"), null, null],
    [Buffer.from(applicationId, "utf8"), null, null],
    [A256GCM_KEY_BYTES * 8, recipientProtected, kid],
  ]);
}
