import { bigInteger, bitString, encodeLength, enumerated, explicit, sequence, smallInteger, unsignedInteger, x509Time } from "../crypto/index.js";
import { authorityKeyIdentifier, extension } from "./extensions.js";
import { signatureScheme, signWith } from "./key-types.js";
import type { Issuer } from "./issuer.js";
import { OID } from "./oids.js";
import { REVOCATION_REASONS, type RevocationReason } from "./revocation-reason.js";

/** One revoked certificate on a CRL. */
export interface CrlEntry {
  serialHex: string;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface CrlOptions {
  issuer: Pick<Issuer, "certificate" | "keyType" | "privateKey" | "keyId">;
  /** Monotonic CRL Number (RFC 5280 §5.2.3). */
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: readonly CrlEntry[];
}

const reasonExtensions = new Map<number, Buffer>();
/** RFC 5280 §5.3.1: reasonCode entry extension; absent for `unspecified`. Cached: only a handful exist. */
function reasonExtension(code: number): Buffer {
  let cached = reasonExtensions.get(code);
  if (!cached) {
    cached = sequence(extension(OID.crlReason, false, enumerated(code)));
    reasonExtensions.set(code, cached);
  }
  return cached;
}

/**
 * Builds and signs a v2 CRL (RFC 5280 §5.1) with the AKI and CRL Number extensions. Entries are
 * encoded straight into the output without an object model, so 100k serials take milliseconds.
 */
export function generateCrl(options: CrlOptions): Buffer {
  const scheme = signatureScheme(options.issuer.keyType);
  const entryBuffers: Buffer[] = new Array(options.entries.length);
  let total = 0;
  const dateCache = new Map<number, Buffer>();
  options.entries.forEach((entry, index) => {
    const millis = Math.floor(entry.revokedAt.getTime() / 1000) * 1000;
    let date = dateCache.get(millis);
    if (!date) {
      date = x509Time(new Date(millis));
      dateCache.set(millis, date);
    }
    const code = REVOCATION_REASONS[entry.reason];
    const parts = [unsignedInteger(Buffer.from(entry.serialHex, "hex")), date];
    if (code !== 0) parts.push(reasonExtension(code));
    const encoded = sequence(...parts);
    entryBuffers[index] = encoded;
    total += encoded.length;
  });
  const fields: Buffer[] = [
    smallInteger(1), // v2
    scheme.algorithmIdentifier,
    options.issuer.certificate.subjectDer,
    x509Time(options.thisUpdate),
    x509Time(options.nextUpdate),
  ];
  // RFC 5280 §5.1.2.6: when there are no revoked certificates the list is absent, not empty.
  if (entryBuffers.length > 0) fields.push(Buffer.concat([Buffer.from([0x30]), encodeLength(total), ...entryBuffers], 1 + encodeLength(total).length + total));
  fields.push(explicit(0, sequence(authorityKeyIdentifier(options.issuer.keyId), extension(OID.crlNumber, false, bigInteger(options.number)))));
  const tbs = sequence(...fields);
  const signature = signWith(options.issuer.keyType, options.issuer.privateKey, tbs);
  return sequence(tbs, scheme.algorithmIdentifier, bitString(signature));
}

