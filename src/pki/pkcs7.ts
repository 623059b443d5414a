import { explicit, implicitConstructed, oid, sequence, smallInteger, tlv } from "../crypto/index.js";
import { OID } from "./oids.js";

/**
 * A certs-only CMS SignedData (RFC 5652 §5; RFC 7030 §4.1.3 / §4.2.3 "certs-only"): no signers,
 * no content, just the certificates. This is what EST returns for cacerts and enroll responses.
 */
export function certsOnlyPkcs7(certificatesDer: readonly Buffer[]): Buffer {
  const signedData = sequence(
    smallInteger(1),
    tlv(0x31, Buffer.alloc(0)), // digestAlgorithms: empty SET
    sequence(oid(OID.cmsData)), // encapContentInfo without content
    implicitConstructed(0, Buffer.concat([...certificatesDer].sort(Buffer.compare))), // certificates [0] IMPLICIT SET OF, DER-sorted
    tlv(0x31, Buffer.alloc(0)), // signerInfos: empty SET
  );
  return sequence(oid(OID.cmsSignedData), explicit(0, signedData));
}
