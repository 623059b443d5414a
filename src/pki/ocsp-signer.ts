import { BACKDATE_MS, publicKeyBitsOf, secondsOnly } from "./ca-hierarchy.js";
import { encodeTbsCertificate, randomSerial, signTbs } from "./certificate.js";
import { authorityKeyIdentifier, basicConstraints, extendedKeyUsage, keyIdentifier, keyUsage, ocspNoCheck, subjectKeyIdentifier } from "./extensions.js";
import type { Issuer } from "./issuer.js";
import { generateKey, type KeyType } from "./key-types.js";
import { moatName } from "./name.js";
import type { DelegatedOcspSigner } from "./ocsp.js";
import { OID } from "./oids.js";

/**
 * Issues a short-lived delegated OCSP responder certificate (RFC 6960 §4.2.2.2): EKU ocspSigning,
 * id-pkix-ocsp-nocheck (§4.2.2.2.1) so clients do not ask about the responder itself. Its key lives
 * only in memory; a restart makes a new one, so it never needs storing.
 */
export async function issueOcspSigner(issuer: Issuer, trustDomain: string, options: { days?: number; keyType?: KeyType; now?: Date } = {}): Promise<DelegatedOcspSigner & { serialHex: string }> {
  const key = await generateKey(options.keyType ?? "ec-p256");
  const now = options.now ?? new Date();
  const serial = randomSerial();
  const tbs = encodeTbsCertificate(
    {
      serial,
      issuerDer: issuer.certificate.subjectDer,
      subjectDer: moatName("Moat OCSP Responder", trustDomain),
      notBefore: secondsOnly(new Date(now.getTime() - BACKDATE_MS)),
      notAfter: secondsOnly(new Date(Math.min(now.getTime() + (options.days ?? 7) * 86_400_000, issuer.certificate.notAfter.getTime()))),
      spkiDer: key.spkiDer,
      extensions: [
        basicConstraints(false),
        keyUsage(["digitalSignature"]),
        extendedKeyUsage([OID.ocspSigning]),
        ocspNoCheck(),
        subjectKeyIdentifier(keyIdentifier(publicKeyBitsOf(key.spkiDer))),
        authorityKeyIdentifier(issuer.keyId),
      ],
    },
    issuer.keyType,
  );
  return {
    certificateDer: signTbs(tbs, issuer.keyType, issuer.privateKey),
    publicKeyBits: publicKeyBitsOf(key.spkiDer),
    keyType: key.keyType,
    privateKey: key.privateKey,
    serialHex: serial.toString("hex"),
  };
}
