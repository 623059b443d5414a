import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { bitString, boolean, explicit, implicitConstructed, implicitPrimitive, octetString, oid, sequence, smallInteger } from "../crypto/index.js";
import { OID } from "./oids.js";

/** One encoded Extension (RFC 5280 §4.1): `SEQUENCE { extnID, critical DEFAULT FALSE, extnValue }`. */
export function extension(extnId: string, critical: boolean, valueDer: Buffer): Buffer {
  return critical ? sequence(oid(extnId), boolean(true), octetString(valueDer)) : sequence(oid(extnId), octetString(valueDer));
}

/** RFC 5280 §4.2.1.9. `pathLength` only for CAs. Always critical in Moat. */
export function basicConstraints(ca: boolean, pathLength?: number): Buffer {
  const parts: Buffer[] = [];
  if (ca) parts.push(boolean(true));
  if (ca && pathLength !== undefined) parts.push(smallInteger(pathLength));
  return extension(OID.basicConstraints, true, sequence(...parts));
}

/** Key usage bits, numbered as in RFC 5280 §4.2.1.3. */
export const KeyUsageBit = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;
export type KeyUsageName = keyof typeof KeyUsageBit;

/** RFC 5280 §4.2.1.3 KeyUsage, critical; a named BIT STRING with trailing zero bits removed (X.690 §11.2.2). */
export function keyUsage(usages: readonly KeyUsageName[]): Buffer {
  const bits = usages.map((usage) => KeyUsageBit[usage]);
  const highest = Math.max(...bits);
  const byteCount = Math.floor(highest / 8) + 1;
  const bytes = Buffer.alloc(byteCount);
  for (const bit of bits) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  const unused = 7 - (highest % 8);
  return extension(OID.keyUsage, true, bitString(bytes, unused));
}

/** RFC 5280 §4.2.1.12, not critical. */
export function extendedKeyUsage(purposes: readonly string[]): Buffer {
  return extension(OID.extKeyUsage, false, sequence(...purposes.map((purpose) => oid(purpose))));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bits. */
export function keyIdentifier(subjectPublicKeyBits: Buffer): Buffer {
  return createHash("sha1").update(subjectPublicKeyBits).digest();
}

export function subjectKeyIdentifier(keyId: Buffer): Buffer {
  return extension(OID.subjectKeyIdentifier, false, octetString(keyId));
}

/** RFC 5280 §4.2.1.1: keyIdentifier [0] only. */
export function authorityKeyIdentifier(keyId: Buffer): Buffer {
  return extension(OID.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, keyId)));
}

/** A subjectAltName entry (RFC 5280 §4.2.1.6). */
export type GeneralName = { type: "dns"; value: string } | { type: "ip"; value: string } | { type: "uri"; value: string };

/** Encodes one GeneralName: dNSName [2], uniformResourceIdentifier [6] (IA5String), iPAddress [7]. */
export function generalName(name: GeneralName): Buffer {
  switch (name.type) {
    case "dns":
      return implicitPrimitive(2, Buffer.from(name.value, "ascii"));
    case "uri":
      return implicitPrimitive(6, Buffer.from(name.value, "ascii"));
    case "ip":
      return implicitPrimitive(7, ipAddressBytes(name.value));
  }
}

/** RFC 5280 §4.2.1.6: not critical when the subject is non-empty (always so in Moat). */
export function subjectAltName(names: readonly GeneralName[]): Buffer {
  return extension(OID.subjectAltName, false, sequence(...names.map(generalName)));
}

/** RFC 5280 §4.2.1.13: one distribution point with a fullName URI. */
export function crlDistributionPoints(url: string): Buffer {
  const distributionPoint = explicit(0, implicitConstructed(0, generalName({ type: "uri", value: url })));
  return extension(OID.cRLDistributionPoints, false, sequence(sequence(distributionPoint)));
}

/** RFC 5280 §4.2.2.1: OCSP and caIssuers access descriptions. */
export function authorityInfoAccess(access: { ocsp?: string; caIssuers?: string }): Buffer {
  const descriptions: Buffer[] = [];
  if (access.ocsp) descriptions.push(sequence(oid(OID.accessOcsp), generalName({ type: "uri", value: access.ocsp })));
  if (access.caIssuers) descriptions.push(sequence(oid(OID.accessCaIssuers), generalName({ type: "uri", value: access.caIssuers })));
  return extension(OID.authorityInfoAccess, false, sequence(...descriptions));
}

/** RFC 6960 §4.2.2.2.1 id-pkix-ocsp-nocheck (value NULL). */
export function ocspNoCheck(): Buffer {
  return extension(OID.ocspNoCheck, false, Buffer.from([0x05, 0x00]));
}

/** The 4 or 16 network-order bytes of an IPv4/IPv6 literal. */
export function ipAddressBytes(text: string): Buffer {
  const version = isIP(text);
  if (version === 4) return Buffer.from(text.split(".").map(Number));
  if (version !== 6) throw new TypeError(`not an IP address: ${text}`);
  let address = text;
  const out = Buffer.alloc(16);
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  let tail: number[] = [];
  if (v4) {
    const octets = v4[1]!.split(".").map(Number);
    tail = [(octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!];
    address = address.slice(0, -v4[1]!.length) + "0:0";
  }
  const [head, rest] = address.split("::") as [string, string | undefined];
  const headGroups = head === "" ? [] : head.split(":");
  const restGroups = rest === undefined || rest === "" ? [] : rest.split(":");
  const groups = rest === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - restGroups.length).fill("0"), ...restGroups];
  groups.forEach((group, index) => out.writeUInt16BE(parseInt(group, 16), index * 2));
  if (tail.length === 2) {
    out.writeUInt16BE(tail[0]!, 12);
    out.writeUInt16BE(tail[1]!, 14);
  }
  return out;
}
