/**
 * The device side of EST enrollment (RFC 7030 §4.2.1) for the fleet bench: a P-256 key and a PKCS#10
 * CSR per device (made before the clock starts: that is the device's work, not the server's), then
 * `POST /.well-known/est/simpleenroll` with the one-time token over HTTPS, and the issued certificate
 * taken out of the certs-only PKCS#7 answer.
 */
import { generateKeyPairSync, sign, X509Certificate } from "node:crypto";
import { Agent, request } from "node:https";
import { bitString, implicitConstructed, oid, sequence, setOf, smallInteger, utf8String } from "../../src/pki/der/encode.js";
import { children, readSingle } from "../../src/pki/der/reader.js";
import { OID } from "../../src/pki/oids.js";

export interface PreparedDevice {
  id: string;
  token: string;
  keyPem: string;
  csrBase64: string;
}

/** A fresh P-256 key and a CSR whose subject is CN=<device id>, signed with it. */
export function prepareDevice(id: string, token: string): PreparedDevice {
  const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = pair.publicKey.export({ format: "der", type: "spki" });
  const subject = sequence(setOf(sequence(oid(OID.commonName), utf8String(id))));
  const info = sequence(smallInteger(0), subject, spki, implicitConstructed(0, Buffer.alloc(0)));
  const csr = sequence(info, sequence(oid(OID.ecdsaWithSha256)), bitString(sign("sha256", info, pair.privateKey)));
  return { id, token, keyPem: pair.privateKey.export({ format: "pem", type: "pkcs8" }).toString(), csrBase64: csr.toString("base64") };
}

/** The first certificate of a certs-only PKCS#7 (ContentInfo → SignedData → certificates [0]). */
export function firstCertificateOf(pkcs7Base64: string): string {
  const contentInfo = readSingle(Buffer.from(pkcs7Base64.replace(/\s+/g, ""), "base64"), 0x30);
  const signedData = children(children(contentInfo)[1]!)[0]!;
  const certificates = children(signedData).find((c) => c.tag === 0xa0);
  if (!certificates) throw new Error("the EST answer holds no certificate");
  return new X509Certificate(children(certificates)[0]!.encoded).toString();
}

/** An HTTPS client for the EST endpoint with `concurrency` kept-alive connections. */
export class EstClient {
  private readonly agent: Agent;

  constructor(
    private readonly port: number,
    caPem: string,
    concurrency: number,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets: concurrency, ca: caPem });
  }

  /** Enrolls one device; resolves with its certificate (PEM), rejects with the HTTP status and body. */
  enroll(device: PreparedDevice): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: this.port,
          path: "/.well-known/est/simpleenroll",
          method: "POST",
          agent: this.agent,
          headers: { authorization: `Bearer ${device.token}`, "content-type": "application/pkcs10", "content-length": Buffer.byteLength(device.csrBase64) },
        },
        (res) => {
          let body = "";
          res.setEncoding("latin1");
          res.on("data", (d: string) => (body += d));
          res.on("end", () => {
            if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${body.slice(0, 120)}`));
            try {
              resolve(firstCertificateOf(body));
            } catch (error) {
              reject(error as Error);
            }
          });
        },
      );
      req.on("error", reject);
      req.end(device.csrBase64);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
