import { MoatError } from "../errors.js";
import { fromBase64Url, toBase64Url } from "./bytes.js";
import { canonicalJsonBytes, parseCanonicalJson, type CanonicalJsonOptions } from "../crypto/index.js";
import type { FirmwarePublicKey } from "./public-key.js";
import { signMessage, verifyMessage, type SignatureCheck } from "./signature-algorithms.js";

/**
 * A signed firmware document: the payload is carried as the exact canonical bytes that were signed
 * (like a COSE_Sign1 payload), so a verifier never re-serialises before checking a signature.
 */
export interface SignedDocument {
  /** base64url of the canonical JSON payload. */
  payload: string;
  signatures: DocumentSignature[];
}

export interface DocumentSignature {
  keyId: string;
  /** base64url signature over the payload bytes; the algorithm comes from the key, never from here. */
  sig: string;
}

/**
 * Signed documents use the portable form of canonical JSON (safe integers, well-formed strings), so
 * a verifier written in another language rebuilds exactly the signed bytes.
 */
const DOCUMENT_JSON: CanonicalJsonOptions = { portable: true, code: "FIRMWARE_MANIFEST_MALFORMED" };

/** The canonical bytes a firmware document's payload (or a key id's input) is signed or hashed over. */
export function documentBytes(payload: unknown): Buffer {
  return canonicalJsonBytes(payload, DOCUMENT_JSON);
}

/** A private key that can sign documents. */
export interface DocumentSigner {
  key: FirmwarePublicKey;
  sign(message: Uint8Array): Buffer | Promise<Buffer>;
}

/** A signer over raw private key bytes held in memory. */
export function memorySigner(key: FirmwarePublicKey, privateKey: Uint8Array): DocumentSigner {
  return { key, sign: (message) => signMessage(key.alg, privateKey, message) };
}

/** Encodes `payload` canonically and signs those bytes with each signer. */
export async function signDocument(payload: Record<string, unknown>, signers: DocumentSigner[]): Promise<SignedDocument> {
  const bytes = documentBytes(payload);
  const signatures: DocumentSignature[] = [];
  for (const signer of signers) signatures.push({ keyId: signer.key.keyId, sig: toBase64Url(await signer.sign(bytes)) });
  return { payload: toBase64Url(bytes), signatures };
}

/** Checks the document's shape (not its signatures) and returns the payload bytes and object. */
export function openDocument(value: unknown, what: string, extraFields: readonly string[] = []): {
  document: SignedDocument;
  bytes: Buffer;
  payload: Record<string, unknown>;
} {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new MoatError("FIRMWARE_MANIFEST_MALFORMED", `${what} must be a JSON object`);
  const record = value as Record<string, unknown>;
  for (const field of Object.keys(record))
    if (field !== "payload" && field !== "signatures" && !extraFields.includes(field))
      throw new MoatError("FIRMWARE_MANIFEST_MALFORMED", `${what} has an unknown field "${field}"`);
  const bytes = fromBase64Url(record.payload, `${what} payload`);
  const payload = parseCanonicalJson(bytes, `${what} payload`, DOCUMENT_JSON);
  if (typeof payload !== "object" || payload === null || Array.isArray(payload))
    throw new MoatError("FIRMWARE_MANIFEST_MALFORMED", `${what} payload must be a JSON object`);
  if (!Array.isArray(record.signatures)) throw new MoatError("FIRMWARE_MANIFEST_MALFORMED", `${what} signatures must be an array`);
  const signatures: DocumentSignature[] = record.signatures.map((entry, i) => {
    if (typeof entry !== "object" || entry === null) throw new MoatError("FIRMWARE_MANIFEST_MALFORMED", `${what} signature ${i} must be an object`);
    const { keyId, sig, ...rest } = entry as Record<string, unknown>;
    if (typeof keyId !== "string" || !/^[0-9a-f]{64}$/.test(keyId) || typeof sig !== "string" || Object.keys(rest).length > 0)
      throw new MoatError("FIRMWARE_MANIFEST_MALFORMED", `${what} signature ${i} must be {keyId, sig}`);
    return { keyId, sig };
  });
  return { document: { payload: record.payload as string, signatures }, bytes, payload: payload as Record<string, unknown> };
}

/** Verifies the signature made by `key` over `bytes`, if the document has one. */
export function checkSignatureBy(document: SignedDocument, bytes: Uint8Array, key: FirmwarePublicKey): SignatureCheck | undefined {
  const entry = document.signatures.find((s) => s.keyId === key.keyId);
  if (!entry) return undefined;
  let sig: Buffer;
  try {
    sig = fromBase64Url(entry.sig, "signature");
  } catch {
    return { valid: false, failed: "encoding" };
  }
  return verifyMessage(key.alg, key.publicKey, bytes, sig);
}
