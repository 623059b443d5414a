import { children, decodeOid, readSingle, type Tlv } from "../crypto/index.js";
import { oid, sequence, setOf, utf8String } from "../crypto/index.js";
import { OID } from "./oids.js";

/** One attribute of a distinguished name, e.g. `{ type: OID.commonName, value: "dev-1" }`. */
export interface NameAttribute {
  type: string;
  value: string;
}

const SHORT_NAMES: Record<string, string> = {
  [OID.commonName]: "CN",
  [OID.organizationName]: "O",
  [OID.serialNumberAttribute]: "serialNumber",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.11": "OU",
  "0.9.2342.19200300.100.1.25": "DC",
  "1.2.840.113549.1.9.1": "emailAddress",
};

/**
 * Encodes a Name (RFC 5280 §4.1.2.4) from attributes in encoding order (most general first),
 * one attribute per RDN, values as UTF8String as §4.1.2.4 asks of new certificates.
 */
export function encodeName(attributes: readonly NameAttribute[]): Buffer {
  return sequence(...attributes.map((attribute) => setOf(sequence(oid(attribute.type), utf8String(attribute.value)))));
}

/** The device/CA naming Moat uses: O = trust domain, then CN. */
export function moatName(commonName: string, trustDomain: string): Buffer {
  return encodeName([
    { type: OID.organizationName, value: trustDomain },
    { type: OID.commonName, value: commonName },
  ]);
}

/** Decodes a Name's attributes in encoding order. Throws DerError on malformed input. */
export function decodeName(name: Tlv | Buffer): NameAttribute[] {
  const element = Buffer.isBuffer(name) ? readSingle(name, 0x30) : name;
  const attributes: NameAttribute[] = [];
  for (const rdn of children(element)) {
    if (rdn.tag !== 0x31) throw new Error("RDN is not a SET");
    for (const atv of children(rdn)) {
      const [type, value] = children(atv);
      if (!type || !value) throw new Error("AttributeTypeAndValue is incomplete");
      attributes.push({ type: decodeOid(type), value: value.content.toString(value.tag === 0x1e ? "utf16le" : "utf8") });
    }
  }
  return attributes;
}

/** A readable one-line form, most specific first like RFC 4514 (`CN=dev-1, O=example.com`). */
export function formatName(attributes: readonly NameAttribute[]): string {
  return [...attributes]
    .reverse()
    .map((attribute) => `${SHORT_NAMES[attribute.type] ?? attribute.type}=${attribute.value}`)
    .join(", ");
}
