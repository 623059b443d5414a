/**
 * The one TLS policy for every listener Moat opens (REST API and EST over HTTPS, MQTT over TLS, MQTT
 * over secure WebSockets): TLS 1.3, or TLS 1.2 with ECDHE key exchange (forward secrecy) and an AEAD
 * cipher (AES-GCM or ChaCha20-Poly1305). No CBC (Lucky13 and padding oracles), no CCM/CCM8, no ARIA or
 * Camellia, no static RSA key exchange. ECDSA suites come first since Moat's CA issues EC keys; BSI
 * TR-02102-2 and Mozilla's "intermediate" profile agree on this set.
 */
import type { SecureContextOptions } from "node:tls";

/** TLS 1.3 suites (all AEAD), in preference order. */
export const TLS13_SUITES: readonly string[] = ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"];

/** TLS 1.2 suites, in preference order. */
export const TLS12_SUITES: readonly string[] = [
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
];

/** The suites as one OpenSSL cipher string (Node splits the TLS 1.3 names out itself). */
export const TLS_CIPHERS = [...TLS13_SUITES, ...TLS12_SUITES].join(":");

/** Spread into the options of every TLS server (tls.createServer, https.createServer, Fastify's `https`). */
export const TLS_SERVER_POLICY: Readonly<Pick<SecureContextOptions, "minVersion" | "ciphers" | "honorCipherOrder" | "ecdhCurve">> = Object.freeze({
  minVersion: "TLSv1.2",
  ciphers: TLS_CIPHERS,
  honorCipherOrder: true,
  ecdhCurve: "X25519:P-256:P-384",
});
