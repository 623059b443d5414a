import { createHash, type KeyObject } from "node:crypto";
import { MoatError } from "../errors.js";
import { bitString, enumerated, explicit, generalizedTime, oid, octetString, sequence, tlv } from "../crypto/index.js";
import { children, decodeBitString, decodeOid, decodeUnsignedInteger, DerError, expectTag, readSingle, type Tlv } from "../crypto/index.js";
import type { Issuer } from "./issuer.js";
import { signatureScheme, signWith, type KeyType } from "./key-types.js";
import { OID } from "./oids.js";
import { REVOCATION_REASONS, type RevocationReason } from "./revocation-reason.js";

/** RFC 6960 §4.2.1 OCSPResponseStatus values Moat sends. */
export const OcspResponseStatus = { successful: 0, malformedRequest: 1, internalError: 2, tryLater: 3, unauthorized: 6 } as const;

/** What the store says about one serial of one issuing CA. */
export type OcspCertStatus = { status: "good" } | { status: "revoked"; revokedAt: Date; reason: RevocationReason } | { status: "unknown" };

/** Looks up many serials of one CA at once (one query per request, not per CertID). */
export type OcspStatusLookup = (issuerSerialHex: string, serialsHex: readonly string[]) => Promise<Map<string, OcspCertStatus>>;

/** A delegated OCSP signer (RFC 6960 §4.2.2.2): a certificate with EKU ocspSigning issued by the CA. */
export interface DelegatedOcspSigner {
  certificateDer: Buffer;
  publicKeyBits: Buffer;
  keyType: KeyType;
  privateKey: KeyObject;
}

export interface OcspCaEntry {
  issuer: Issuer;
  signer?: DelegatedOcspSigner;
}

/** A parsed CertID (RFC 6960 §4.1.1), keeping its exact encoding to echo it back. */
export interface OcspCertId {
  hashAlgorithm: string;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  serialHex: string;
  encoded: Buffer;
}

export interface ParsedOcspRequest {
  certIds: OcspCertId[];
  /** The whole nonce Extension element (RFC 8954), echoed verbatim. */
  nonceExtension?: Buffer;
}

const HASHES: Record<string, string> = { [OID.sha1]: "sha1", [OID.sha256]: "sha256", [OID.sha384]: "sha384", [OID.sha512]: "sha512" };
const MAX_CERT_IDS = 32;
/** RFC 8954 §2.1: responders reject nonces longer than 32 octets. */
const MAX_NONCE = 32;

/** Parses an OCSPRequest (RFC 6960 §4.1.1) strictly; throws `PKI_OCSP_MALFORMED` on anything off. */
export function parseOcspRequest(der: Buffer): ParsedOcspRequest {
  try {
    const outer = readSingle(der, 0x30);
    const [tbsRequest] = children(outer);
    const fields = children(expectTag(tbsRequest, 0x30, "tbsRequest"));
    let index = 0;
    if (fields[index]?.tag === 0xa0) index++; // version, v1 only
    if (fields[index]?.tag === 0xa1) index++; // requestorName: ignored (no signed requests)
    const requestList = children(expectTag(fields[index++], 0x30, "requestList"));
    if (requestList.length === 0 || requestList.length > MAX_CERT_IDS) throw new DerError(`requestList must hold 1..${MAX_CERT_IDS} entries`);
    const certIds = requestList.map((request) => parseCertId(expectTag(children(expectTag(request, 0x30, "Request"))[0], 0x30, "CertID")));
    let nonceExtension: Buffer | undefined;
    const extensions = fields[index];
    if (extensions) {
      if (extensions.tag !== 0xa2) throw new DerError("unexpected field in tbsRequest");
      for (const ext of children(expectTag(children(extensions)[0], 0x30, "requestExtensions"))) {
        const parts = children(ext);
        if (decodeOid(parts[0]!) !== OID.ocspNonce) continue;
        const value = expectTag(parts[parts.length - 1], 0x04, "nonce extnValue");
        const nonce = readSingle(value.content, 0x04);
        if (nonce.content.length < 1 || nonce.content.length > MAX_NONCE) throw new DerError(`nonce must be 1..${MAX_NONCE} octets`);
        nonceExtension = ext.encoded;
      }
    }
    return { certIds, nonceExtension };
  } catch (cause) {
    throw new MoatError("PKI_OCSP_MALFORMED", `OCSP request is malformed: ${cause instanceof Error ? cause.message : "unreadable"}`, { cause });
  }
}

function parseCertId(certId: Tlv): OcspCertId {
  const [algorithm, nameHash, keyHash, serial] = children(certId);
  const hashAlgorithm = decodeOid(children(expectTag(algorithm, 0x30, "hashAlgorithm"))[0]!);
  const serialBytes = decodeUnsignedInteger(expectTag(serial, 0x02, "serialNumber"));
  if (serialBytes.length > 20) throw new DerError("serial longer than 20 octets");
  return {
    hashAlgorithm,
    issuerNameHash: expectTag(nameHash, 0x04, "issuerNameHash").content,
    issuerKeyHash: expectTag(keyHash, 0x04, "issuerKeyHash").content,
    serialHex: serialBytes.toString("hex"),
    encoded: certId.encoded,
  };
}

/** A bare OCSPResponse with an error status and no body (RFC 6960 §4.2.1). */
export function ocspErrorResponse(status: Exclude<keyof typeof OcspResponseStatus, "successful">): Buffer {
  return sequence(enumerated(OcspResponseStatus[status]));
}

interface PreparedCa {
  entry: OcspCaEntry;
  nameHashes: Map<string, Buffer>;
  keyHashes: Map<string, Buffer>;
  responderId: Buffer;
  certs: Buffer | null;
}

export interface OcspResponderOptions {
  cas: readonly OcspCaEntry[];
  lookup: OcspStatusLookup;
  /** nextUpdate - thisUpdate of each SingleResponse (default 1 hour). */
  validitySeconds?: number;
}

/**
 * An RFC 6960 responder: answers good / revoked / unknown for the CAs it knows, echoes the nonce,
 * signs with the CA (or its delegated signer), and answers malformedRequest rather than failing on
 * garbage. `respond` never throws for bad input.
 */
export class OcspResponder {
  private readonly cas: PreparedCa[];
  private readonly validityMs: number;

  constructor(private readonly options: OcspResponderOptions) {
    this.validityMs = (options.validitySeconds ?? 3600) * 1000;
    this.cas = options.cas.map((entry) => {
      const nameHashes = new Map<string, Buffer>();
      const keyHashes = new Map<string, Buffer>();
      const keyBits = decodeBitString(children(readSingle(entry.issuer.certificate.spkiDer, 0x30))[1]!).bytes;
      for (const [algorithmOid, name] of Object.entries(HASHES)) {
        nameHashes.set(algorithmOid, createHash(name).update(entry.issuer.certificate.subjectDer).digest());
        keyHashes.set(algorithmOid, createHash(name).update(keyBits).digest());
      }
      const signerKeyBits = entry.signer ? entry.signer.publicKeyBits : keyBits;
      // ResponderID byKey [2] EXPLICIT KeyHash: SHA-1 of the signer's public key bits (RFC 6960 §4.2.1).
      const responderId = explicit(2, octetString(createHash("sha1").update(signerKeyBits).digest()));
      const certs = entry.signer ? explicit(0, sequence(entry.signer.certificateDer)) : null;
      return { entry, nameHashes, keyHashes, responderId, certs };
    });
  }

  /** Answers one DER OCSPRequest with a DER OCSPResponse. */
  async respond(requestDer: Buffer, now: Date = new Date()): Promise<Buffer> {
    let request: ParsedOcspRequest;
    try {
      request = parseOcspRequest(requestDer);
    } catch {
      return ocspErrorResponse("malformedRequest");
    }
    // All CertIDs are answered by the CA of the first one we know; RFC 5019 §2.2.3 says "unauthorized" when we know none.
    const matches = request.certIds.map((certId) => this.cas.find((ca) => this.matches(ca, certId)));
    const ca = matches.find((match) => match !== undefined);
    if (!ca) return ocspErrorResponse("unauthorized");
    let statuses: Map<string, OcspCertStatus>;
    try {
      const serials = request.certIds.filter((_, i) => matches[i] === ca).map((certId) => certId.serialHex);
      statuses = await this.options.lookup(ca.entry.issuer.serialHex, serials);
    } catch {
      return ocspErrorResponse("tryLater");
    }
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.validityMs);
    const responses = request.certIds.map((certId, i) => {
      const status: OcspCertStatus = matches[i] === ca ? (statuses.get(certId.serialHex) ?? { status: "unknown" }) : { status: "unknown" };
      return sequence(certId.encoded, encodeCertStatus(status), generalizedTime(thisUpdate), explicit(0, generalizedTime(nextUpdate)));
    });
    const responseData = sequence(
      ca.responderId,
      generalizedTime(thisUpdate),
      sequence(...responses),
      ...(request.nonceExtension ? [explicit(1, sequence(request.nonceExtension))] : []),
    );
    const signer = ca.entry.signer ?? { keyType: ca.entry.issuer.keyType, privateKey: ca.entry.issuer.privateKey };
    const signature = signWith(signer.keyType, signer.privateKey, responseData);
    const basic = sequence(responseData, signatureScheme(signer.keyType).algorithmIdentifier, bitString(signature), ...(ca.certs ? [ca.certs] : []));
    return sequence(enumerated(OcspResponseStatus.successful), explicit(0, sequence(oid(OID.ocspBasic), octetString(basic))));
  }

  private matches(ca: PreparedCa, certId: OcspCertId): boolean {
    const name = ca.nameHashes.get(certId.hashAlgorithm);
    const key = ca.keyHashes.get(certId.hashAlgorithm);
    return !!name && !!key && name.equals(certId.issuerNameHash) && key.equals(certId.issuerKeyHash);
  }
}

/** CertStatus (RFC 6960 §4.2.1): good [0] NULL, revoked [1] RevokedInfo, unknown [2] NULL. */
function encodeCertStatus(status: OcspCertStatus): Buffer {
  if (status.status === "good") return Buffer.from([0x80, 0x00]);
  if (status.status === "unknown") return Buffer.from([0x82, 0x00]);
  const reason = REVOCATION_REASONS[status.reason];
  return tlv(0xa1, Buffer.concat([generalizedTime(status.revokedAt), explicit(0, enumerated(reason))]));
}
