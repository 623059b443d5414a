import type { KeyObject } from "node:crypto";

/**
 * A CA signing key the PKI can use without holding the private key: X.509 certificates, CRLs and
 * OCSP responses are signed by calling `sign`. Implemented by PKCS#11 tokens (the key never leaves
 * the token) and usable for software keys too.
 */
export interface CaKeySigner {
  /** Key type in the PKI's vocabulary; tokens generate P-256 keys. */
  readonly keyType: "ec-p256";
  /** The public half (for the certificate's SubjectPublicKeyInfo and key identifiers). */
  readonly publicKey: KeyObject;
  /** Where the key lives, for status output, e.g. `pkcs11:moat-ca/moat-ca-root`. Not secret. */
  readonly location: string;
  /** The signatureValue for ecdsa-with-SHA256 over `data`: a DER Ecdsa-Sig-Value (RFC 3279 §2.2.3). */
  sign(data: Buffer): Promise<Buffer>;
  /**
   * The same, synchronously (PKCS#11 calls are synchronous), for code paths that sign inline the
   * way `node:crypto.sign` does, e.g. the PKI's `signWith(keyType, key, data)`.
   */
  signSync(data: Buffer): Buffer;
}
