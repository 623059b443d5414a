import { MoatError } from "../errors.js";
import { fromBase64Url, toBase64Url } from "./bytes.js";
import { firmwarePublicKey, type FirmwarePublicKey } from "./public-key.js";
import { assertSignatureAlgorithm } from "./signature-algorithms.js";
import { checkSignatureBy, openDocument, signDocument, type DocumentSigner, type SignedDocument } from "./signed-document.js";
import { parseTime, requireString } from "./fields.js";

export const KEY_CERTIFICATE_TYPE = "moat-firmware-key-certificate/1";

/** What a root firmware key vouches for: this signing key, under this name, within this window. */
export interface KeyCertificate {
  issuer: string;
  name: string;
  subject: FirmwarePublicKey;
  notBefore: Date;
  notAfter: Date;
}

/** The root key certifies `subject` for the window `[notBefore, notAfter]`. */
export async function certifySigningKey(
  root: DocumentSigner,
  subject: FirmwarePublicKey,
  options: { name: string; notBefore: Date; notAfter: Date },
): Promise<SignedDocument> {
  if (!(options.notAfter > options.notBefore)) throw new MoatError("FIRMWARE_KEY_MALFORMED", "a key certificate's notAfter must be after notBefore");
  return signDocument(
    {
      type: KEY_CERTIFICATE_TYPE,
      issuer: root.key.keyId,
      name: options.name,
      subject: { alg: subject.alg, keyId: subject.keyId, publicKey: toBase64Url(subject.publicKey) },
      notBefore: options.notBefore.toISOString(),
      notAfter: options.notAfter.toISOString(),
    },
    [root],
  );
}

/**
 * Checks a signing-key certificate against the pinned roots and returns what it certifies.
 * The validity window is checked by the caller against the time the key signed (see verifier).
 */
export function verifyKeyCertificate(value: unknown, trustedRoots: readonly FirmwarePublicKey[]): KeyCertificate {
  const { document, bytes, payload } = openDocument(value, "key certificate");
  const fail = (why: string) => new MoatError("FIRMWARE_KEY_MALFORMED", `key certificate: ${why}`);
  if (payload.type !== KEY_CERTIFICATE_TYPE) throw fail(`type must be ${KEY_CERTIFICATE_TYPE}`);
  const known = new Set(["type", "issuer", "name", "subject", "notBefore", "notAfter"]);
  for (const field of Object.keys(payload)) if (!known.has(field)) throw fail(`unknown field "${field}"`);
  const issuer = requireString(payload.issuer, "key certificate issuer", "FIRMWARE_KEY_MALFORMED");
  const root = trustedRoots.find((key) => key.keyId === issuer);
  if (!root) throw new MoatError("FIRMWARE_KEY_UNTRUSTED", `the signing key is certified by ${issuer.slice(0, 16)}…, which is not a pinned root key`);
  const check = checkSignatureBy(document, bytes, root);
  if (!check?.valid) throw new MoatError("FIRMWARE_KEY_UNTRUSTED", "the signing-key certificate's signature does not verify against the pinned root");
  const subject = payload.subject;
  if (typeof subject !== "object" || subject === null || Array.isArray(subject)) throw fail("subject must be an object");
  const { alg, keyId, publicKey, ...rest } = subject as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw fail("subject has unknown fields");
  const key = firmwarePublicKey(assertSignatureAlgorithm(alg), fromBase64Url(publicKey, "subject publicKey", "FIRMWARE_KEY_MALFORMED"));
  if (key.keyId !== keyId) throw fail("subject keyId does not match its public key");
  return {
    issuer,
    name: requireString(payload.name, "key certificate name", "FIRMWARE_KEY_MALFORMED"),
    subject: key,
    notBefore: parseTime(payload.notBefore, "notBefore", "FIRMWARE_KEY_MALFORMED"),
    notAfter: parseTime(payload.notAfter, "notAfter", "FIRMWARE_KEY_MALFORMED"),
  };
}
