// The PKCS#10 request (RFC 2986) a device sends to EST. Built on the device with the shared DER encoder;
// the signature comes from a DeviceKey, so a key held in a PKCS#11 token signs its own request.
import { bitString, implicitConstructed, oid, sequence, setOf, smallInteger, utf8String } from "../crypto/index.js";
import type { DeviceKey } from "./device-key.js";

/** The few object identifiers a device CSR names (RFC 5280, RFC 5758). */
const OIDS = { commonName: "2.5.4.3", ecdsaWithSha256: "1.2.840.10045.4.3.2" } as const;

/**
 * A DER PKCS#10 request for `key` with subject `CN=<deviceId>`: the CA copies nothing from it but the
 * public key, and checks that the CN names the device being enrolled (docs/pki.md, the device profile).
 */
export async function buildCsr(deviceId: string, key: DeviceKey): Promise<Buffer> {
  const subject = sequence(setOf(sequence(oid(OIDS.commonName), utf8String(deviceId))));
  const info = sequence(smallInteger(0), subject, key.spkiDer, implicitConstructed(0, Buffer.alloc(0)));
  const signature = await key.signDer(info);
  return sequence(info, sequence(oid(OIDS.ecdsaWithSha256)), bitString(signature));
}
