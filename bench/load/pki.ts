/**
 * A certificate hierarchy for load benches, made with Moat's own PKI (the DER template path, which
 * issues thousands of device certificates per second): a root and issuing CA, a server certificate
 * for 127.0.0.1/localhost and `count` device certificates that share one key, since key generation
 * is not what these benches measure.
 */
import "reflect-metadata";
import { createPrivateKey, generateKeyPairSync, randomBytes } from "node:crypto";
import type { CredentialsFile } from "./protocol.js";

export interface BenchPki {
  /** Issuing CA then root: what client and server certificates are verified against. */
  chainPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  issuingPem: string;
  deviceKeyPem: string;
  devices: { id: string; certPem: string; serial: string }[];
}

export async function makeBenchPki(count: number, prefix = "dev-"): Promise<BenchPki> {
  const pki = await import("../../src/pki/index.js");
  const trustDomain = "bench.moat";
  const { root, issuing } = await pki.createCaHierarchy({ keyType: "ec-p256", trustDomain });
  const server = await pki.issueServerCertificate({ issuing, hostnames: ["127.0.0.1", "localhost"], trustDomain });
  const template = new pki.DeviceCertificateTemplate(pki.loadIssuer(issuing), trustDomain, pki.pkiUrls("http://127.0.0.1:8080"));
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spkiDer = key.publicKey.export({ format: "der", type: "spki" });
  const devices: BenchPki["devices"] = [];
  for (let i = 0; i < count; i++) {
    const serial = randomBytes(16);
    serial[0] = (serial[0]! & 0x7f) | 0x10;
    const built = template.issue({ deviceId: `${prefix}${i}`, spkiDer, serial, days: 30 });
    devices.push({ id: `${prefix}${i}`, certPem: pki.toPem(built.der, "CERTIFICATE"), serial: serial.toString("hex") });
  }
  return {
    chainPem: issuing.certificatePem.trimEnd() + "\n" + root.certificatePem.trimEnd() + "\n",
    serverCertPem: server.certificatePem.trimEnd() + "\n" + issuing.certificatePem.trimEnd() + "\n",
    serverKeyPem: createPrivateKey({ key: server.privateKeyPkcs8Der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString(),
    issuingPem: issuing.certificatePem,
    deviceKeyPem: key.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    devices,
  };
}

/** The load generator's view of the hierarchy. */
export function credentialsOf(pki: BenchPki): CredentialsFile {
  return { caPem: pki.chainPem, sharedKeyPem: pki.deviceKeyPem, devices: pki.devices.map((d) => ({ id: d.id, certPem: d.certPem })) };
}
