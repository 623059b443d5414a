/** The PKI door: CA hierarchy, issuance, CSR checks, revocation, CRL, OCSP and EST. */
export { createCaHierarchy, createIssuingCa, type CaMaterial, type CreateCaHierarchyOptions, type CreateIssuingCaOptions } from "./ca-hierarchy.js";
export { issueServerCertificate, type IssueServerCertificateOptions, type ServerCertificate } from "./server-certificate.js";
export { KEY_TYPES, isKeyType, type KeyType, type ExternalSigner, type SigningKey } from "./key-types.js";
export { DEFAULT_PUBLIC_URL, pkiUrls, advertisedUrls, type PkiUrls } from "./naming.js";
export { toPem, fromPem, fromPemAll } from "./pem.js";
export { parseCertificate, fingerprintOf, type ParsedCertificate } from "./certificate.js";
export { certificateKeyFacts, publicKeyFacts, weakKeyReason, type KeyFacts } from "./key-facts.js";
export { loadIssuer, type Issuer, type CaKeyInput } from "./issuer.js";
export { verifyCsr, MAX_CSR_BYTES, type VerifiedCsr } from "./csr.js";
export { DeviceCertificateTemplate, deviceUrn, resolveValidityDays, type ValidityPolicy } from "./device-profile.js";
export { generateCrl, type CrlEntry } from "./crl.js";
export { OcspResponder, parseOcspRequest, type OcspCertStatus, type OcspStatusLookup } from "./ocsp.js";
export { issueOcspSigner } from "./ocsp-signer.js";
export { certsOnlyPkcs7 } from "./pkcs7.js";
export { REVOCATION_REASONS, parseRevocationReason, type RevocationReason } from "./revocation-reason.js";
export {
  CaRegistry,
  caKeyAad,
  type CaRole,
  type StoredCertificate,
  type CaKeyRepository,
  type CaUnitOfWork,
  type CaRegistryStore,
  type Sealer,
  type InitializeCaOptions,
  type CaKeyVault,
  type CaKeyStorage,
  CA_KEY_STORAGES,
} from "./ca-registry.js";
export { TokenCaKeys } from "./token-ca-keys.js";
export { Pki, type PkiOptions } from "./pki-service.js";
export { CertificateService, normalizeSerialHex, assertSubjectNamesDevice, type IssuedCertificate, type IssueRequest } from "./certificate-service.js";
export { CrlService } from "./crl-service.js";
export { CERTIFICATE_STATUSES, certificateStatus, certificateView, type CertificateStatus } from "./certificate-view.js";
export { OcspService } from "./ocsp-service.js";
export { EnrollmentService } from "./enrollment-service.js";
export { IssuerCache } from "./issuer-cache.js";
export { generateKey, type GeneratedKey } from "./key-types.js";
export type {
  CertificateRecord,
  CertificateFilter,
  CertificateRepository,
  RevokedEntry,
  CrlState,
  CrlRepository,
  EnrollmentTokenPort,
  ManufacturerCaRecord,
  ManufacturerCaRepository,
  PkiDevice,
  PkiDevicePort,
  PkiUnitOfWork,
  PkiStore,
} from "./ports.js";
