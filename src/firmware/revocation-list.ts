import { MoatError } from "../errors.js";
import type { FirmwarePublicKey } from "./public-key.js";
import { checkSignatureBy, openDocument, signDocument, type DocumentSigner, type SignedDocument } from "./signed-document.js";
import { parseTime, requireCount, requireString } from "./fields.js";

export const REVOCATION_LIST_TYPE = "moat-firmware-key-revocations/1";

export interface RevokedKey {
  keyId: string;
  revokedAt: string;
  reason: string;
}

/** A root-signed list of revoked signing keys. `version` only grows, so a device refuses an older list. */
export interface RevocationList {
  issuer: string;
  version: number;
  issuedAt: Date;
  revoked: RevokedKey[];
}

/** Signs a revocation list with a root key. */
export async function signRevocationList(root: DocumentSigner, version: number, revoked: RevokedKey[], issuedAt = new Date()): Promise<SignedDocument> {
  return signDocument({ type: REVOCATION_LIST_TYPE, issuer: root.key.keyId, version, issuedAt: issuedAt.toISOString(), revoked }, [root]);
}

/**
 * Verifies a revocation list against the pinned roots. `minVersion` is the highest version the
 * device has already accepted: an older list is a replay that would un-revoke keys.
 */
export function verifyRevocationList(value: unknown, trustedRoots: readonly FirmwarePublicKey[], minVersion = 0): RevocationList {
  const fail = (why: string) => new MoatError("FIRMWARE_REVOCATION_LIST_INVALID", `revocation list: ${why}`);
  let opened: ReturnType<typeof openDocument>;
  try {
    opened = openDocument(value, "revocation list");
  } catch (cause) {
    throw new MoatError("FIRMWARE_REVOCATION_LIST_INVALID", "revocation list is malformed", { cause });
  }
  const { document, bytes, payload } = opened;
  if (payload.type !== REVOCATION_LIST_TYPE) throw fail(`type must be ${REVOCATION_LIST_TYPE}`);
  const issuer = requireString(payload.issuer, "revocation list issuer", "FIRMWARE_REVOCATION_LIST_INVALID");
  const root = trustedRoots.find((key) => key.keyId === issuer);
  if (!root || !checkSignatureBy(document, bytes, root)?.valid) throw fail("not signed by a pinned root key");
  const version = requireCount(payload.version, "revocation list version", "FIRMWARE_REVOCATION_LIST_INVALID");
  if (version < minVersion) throw fail(`version ${version} is older than version ${minVersion} already accepted`);
  if (!Array.isArray(payload.revoked)) throw fail("revoked must be an array");
  const revoked = payload.revoked.map((entry, i): RevokedKey => {
    const record = (entry ?? {}) as Record<string, unknown>;
    const keyId = requireString(record.keyId, `revoked[${i}].keyId`, "FIRMWARE_REVOCATION_LIST_INVALID");
    parseTime(record.revokedAt, `revoked[${i}].revokedAt`, "FIRMWARE_REVOCATION_LIST_INVALID");
    return { keyId, revokedAt: record.revokedAt as string, reason: requireString(record.reason, `revoked[${i}].reason`, "FIRMWARE_REVOCATION_LIST_INVALID") };
  });
  return { issuer, version, issuedAt: parseTime(payload.issuedAt, "issuedAt", "FIRMWARE_REVOCATION_LIST_INVALID"), revoked };
}
