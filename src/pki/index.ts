/** The PKI door: CA hierarchy, issuance, CSR checks, revocation, CRL, OCSP and EST. */
export { createCaHierarchy, createIssuingCa, type CaMaterial, type CreateCaHierarchyOptions, type CreateIssuingCaOptions } from "./ca-hierarchy.js";
export { issueServerCertificate, type IssueServerCertificateOptions, type ServerCertificate } from "./server-certificate.js";
export { KEY_TYPES, isKeyType, type KeyType } from "./key-types.js";
export { DEFAULT_PUBLIC_URL, pkiUrls, type PkiUrls } from "./naming.js";
export { toPem, fromPem, fromPemAll } from "./pem.js";
