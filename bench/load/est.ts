/**
 * The device side of EST enrollment (RFC 7030 §4.2.1) for the fleet bench: a P-256 key and a PKCS#10
 * CSR per device, made with the device SDK's own code (src/device) before the clock starts (that is the
 * device's work, not the server's), then
 * `POST /.well-known/est/simpleenroll` with the one-time token over HTTPS, and the issued certificate
 * taken out of the certs-only PKCS#7 answer.
 */
import { X509Certificate } from "node:crypto";
import { Agent, request } from "node:https";
import { buildCsr } from "../../src/device/csr.js";
import { SoftwareKey } from "../../src/device/device-key.js";
import { certificatesOfEstBody } from "../../src/device/pkcs7.js";

export interface PreparedDevice {
  id: string;
  token: string;
  keyPem: string;
  csrBase64: string;
}

/** A fresh P-256 key and a CSR with subject CN=<device id>, made as the device SDK makes them. */
export async function prepareDevice(id: string, token: string): Promise<PreparedDevice> {
  const key = SoftwareKey.generate();
  return { id, token, keyPem: key.tlsKeyPem(), csrBase64: (await buildCsr(id, key)).toString("base64") };
}

/** The issued certificate (PEM) out of an EST answer, read by the SDK's own reader. */
export function firstCertificateOf(body: string): string {
  const [first] = certificatesOfEstBody(body);
  if (!first) throw new Error("the EST answer holds no certificate");
  return new X509Certificate(first).toString();
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
