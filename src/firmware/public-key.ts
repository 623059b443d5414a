import { createHash, createPublicKey } from "node:crypto";
import { MoatError } from "../errors.js";
import { fromBase64Url, toBase64Url } from "./bytes.js";
import { documentBytes } from "./signed-document.js";
import { assertPublicKey, assertSignatureAlgorithm, type SignatureAlgorithm } from "./signature-algorithms.js";

/** A public firmware key (root or signing) with its algorithm and stable id. */
export interface FirmwarePublicKey {
  alg: SignatureAlgorithm;
  publicKey: Buffer;
  /** SHA-256 over the canonical `{alg, publicKey}`: binds the algorithm into the id. */
  keyId: string;
}

export const PUBLIC_KEY_FILE_TYPE = "moat-firmware-public-key/1";

/** Computes the key id of `(alg, publicKey)`. */
export function keyIdOf(alg: SignatureAlgorithm, publicKey: Uint8Array): string {
  return createHash("sha256").update(documentBytes({ alg, publicKey: toBase64Url(publicKey) })).digest("hex");
}

/** Builds a {@link FirmwarePublicKey}, checking the key's encoding for `alg`. */
export function firmwarePublicKey(alg: SignatureAlgorithm, publicKey: Uint8Array): FirmwarePublicKey {
  assertPublicKey(alg, publicKey);
  return { alg, publicKey: Buffer.from(publicKey), keyId: keyIdOf(alg, publicKey) };
}

/** The JSON file a device or operator pins (`--trust ROOT.pub`). */
export function serializePublicKey(key: FirmwarePublicKey): string {
  return `${JSON.stringify({ type: PUBLIC_KEY_FILE_TYPE, alg: key.alg, keyId: key.keyId, publicKey: toBase64Url(key.publicKey) }, null, 2)}\n`;
}

/**
 * Parses a pinned public key: Moat's JSON key file (every algorithm, hybrid included) or, for
 * Ed25519 and P-256, a PEM SubjectPublicKeyInfo as `openssl pkey -pubout` writes it.
 */
export function parsePublicKey(text: string): FirmwarePublicKey {
  const trimmed = text.trim();
  if (trimmed.startsWith("-----BEGIN PUBLIC KEY-----")) return parsePemPublicKey(trimmed);
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (cause) {
    throw new MoatError("FIRMWARE_KEY_MALFORMED", "the public key file is neither Moat key JSON nor a PEM public key", { cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new MoatError("FIRMWARE_KEY_MALFORMED", "the public key file must be a JSON object");
  const record = value as Record<string, unknown>;
  if (record.type !== PUBLIC_KEY_FILE_TYPE) throw new MoatError("FIRMWARE_KEY_MALFORMED", `the public key file type must be ${PUBLIC_KEY_FILE_TYPE}`);
  const alg = assertSignatureAlgorithm(record.alg);
  const key = firmwarePublicKey(alg, fromBase64Url(record.publicKey, "publicKey", "FIRMWARE_KEY_MALFORMED"));
  if (record.keyId !== undefined && record.keyId !== key.keyId)
    throw new MoatError("FIRMWARE_KEY_MALFORMED", "the key file's keyId does not match its public key");
  return key;
}

function parsePemPublicKey(pem: string): FirmwarePublicKey {
  let der: Buffer;
  let type: string | undefined;
  let curve: string | undefined;
  try {
    const key = createPublicKey(pem);
    type = key.asymmetricKeyType;
    curve = key.asymmetricKeyDetails?.namedCurve;
    der = key.export({ format: "der", type: "spki" });
  } catch (cause) {
    throw new MoatError("FIRMWARE_KEY_MALFORMED", "the PEM public key does not parse", { cause });
  }
  // The raw key is the SubjectPublicKey BIT STRING, which ends the DER for both key types.
  if (type === "ed25519") return firmwarePublicKey("ed25519", der.subarray(der.length - 32));
  if (type === "ec" && curve === "prime256v1") return firmwarePublicKey("ecdsa-p256", der.subarray(der.length - 65));
  throw new MoatError("FIRMWARE_ALGORITHM_UNSUPPORTED", `PEM key type ${type ?? "unknown"}${curve ? ` (${curve})` : ""} is not an allowed firmware key`);
}
