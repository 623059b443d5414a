import type { TLSSocket } from "node:tls";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { SecurityEventSink } from "../../audit/index.js";
import { MoatError } from "../../errors.js";
import { certsOnlyPkcs7, MAX_CSR_BYTES, type IssuedCertificate, type Pki, type CaRegistry } from "../../pki/index.js";
import { FailureWindow } from "../failure-window.js";
import type { ApiSettings } from "../services.js";

export interface EstServices {
  readonly pki: Pki;
  readonly ca: CaRegistry;
  /** Refused enrollments are `auth.failed` events (aggregated per source address on the way to the log). */
  readonly securityEvents: SecurityEventSink;
}

/**
 * RFC 7030 §4.1.3 / §4.2.3: certs-only CMS, base64 with Content-Transfer-Encoding. Lines end in LF
 * (not MIME's CRLF) so `base64 -d` and other strict decoders read the body as it comes.
 */
const PKCS7_TYPE = "application/pkcs7-mime; smime-type=certs-only";
/** base64 grows 4/3 and line breaks add a little more. */
const BODY_LIMIT = Math.ceil((MAX_CSR_BYTES * 4) / 3) + 4096;

function sendPkcs7(reply: FastifyReply, certificates: Buffer[]): FastifyReply {
  const body = certsOnlyPkcs7(certificates).toString("base64").replace(/(.{76})/g, "$1\n");
  return reply.code(200).header("content-type", PKCS7_TYPE).header("content-transfer-encoding", "base64").send(body + "\n");
}

/** RFC 7030 §4.2.1: the body is a base64 DER PKCS#10 (PEM is tolerated). Returned as DER or PEM text for verifyCsr. */
function csrOf(body: unknown): Buffer | string {
  const text = Buffer.isBuffer(body) ? body.toString("latin1") : typeof body === "string" ? body : "";
  if (text.includes("-----BEGIN")) return text;
  const compact = text.replace(/\s+/g, "");
  if (compact.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || compact.length % 4 !== 0)
    throw new MoatError("PKI_CSR_MALFORMED", "CSR is malformed: the EST body must be base64 DER PKCS#10");
  return Buffer.from(compact, "base64");
}

/** The DER of the TLS client certificate, if the client sent one. */
export function clientCertificate(request: FastifyRequest): Buffer | undefined {
  const socket = request.raw.socket as Partial<TLSSocket>;
  const cert = typeof socket.getPeerCertificate === "function" ? socket.getPeerCertificate(false) : undefined;
  return cert && cert.raw && cert.raw.length > 0 ? cert.raw : undefined;
}

function bearer(request: FastifyRequest): string | undefined {
  const match = /^Bearer\s+(\S+)$/.exec(request.headers.authorization ?? "");
  return match?.[1];
}

/**
 * EST (RFC 7030) on the API's HTTPS port. These routes are public to operator auth: each does its
 * own device authentication (a one-time enrollment token, a factory certificate or the current
 * device certificate over mTLS).
 */
export async function estRoutes(
  api: FastifyInstance,
  { services, settings }: { services: EstServices; settings: Pick<ApiSettings, "authFailureLimit" | "authFailureWindowSeconds"> },
): Promise<void> {
  api.addContentTypeParser(["application/pkcs10", "application/pkcs10-mime", "text/plain"], { parseAs: "buffer", bodyLimit: BODY_LIMIT }, (_request, body, done) => done(null, body));

  const enrolled = (reply: FastifyReply, issued: IssuedCertificate) => sendPkcs7(reply, [issued.certificateDer]);
  // Enrollment is unauthenticated until it succeeds: refusals back off like bad API tokens do.
  const window = new FailureWindow(settings.authFailureLimit, settings.authFailureWindowSeconds * 1000);
  const guarded =
    (enroll: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const address = request.ip;
      window.enforce(address, reply);
      try {
        return await enroll(request, reply);
      } catch (error) {
        if (error instanceof MoatError && error.status >= 400 && error.status < 500) {
          window.fail(address);
          const route = request.routeOptions.url ?? request.url;
          await services.securityEvents.emit({ type: "auth.failed", severity: "low", actor: `address:${address}`, subject: address, data: { channel: "est", reason: error.code, address, route } });
        }
        throw error;
      }
    };

  api.get("/.well-known/est/cacerts", { config: { public: true }, schema: { tags: ["est"], summary: "EST CA certificates (RFC 7030 §4.1)", security: [] } }, async (_request, reply) => {
    const cas = (await services.ca.list()).filter((c) => (c.role === "root" || c.role === "issuing") && new Date(c.notAfter) > new Date());
    return sendPkcs7(reply, cas.map((c) => Buffer.from(c.certificatePem.replace(/-----[^-]+-----|\s/g, ""), "base64")));
  });

  api.post(
    "/.well-known/est/simpleenroll",
    { config: { public: true }, bodyLimit: BODY_LIMIT, schema: { tags: ["est"], summary: "EST enrollment with a one-time token or a factory certificate (RFC 7030 §4.2.1)", security: [] } },
    guarded(async (request, reply) => {
      const csr = csrOf(request.body);
      const token = bearer(request);
      if (token) return enrolled(reply, await services.pki.enrollment.enrollWithToken(token, csr));
      const factory = clientCertificate(request);
      if (factory) return enrolled(reply, await services.pki.enrollment.enrollWithManufacturerCertificate(factory, csr));
      reply.header("www-authenticate", 'Bearer realm="moat-est"');
      throw new MoatError("PKI_ENROLL_AUTH_REQUIRED", "send Authorization: Bearer <enrollment token> or present a factory certificate");
    }),
  );

  api.post(
    "/.well-known/est/simplereenroll",
    { config: { public: true }, bodyLimit: BODY_LIMIT, schema: { tags: ["est"], summary: "EST re-enrollment with the current device certificate over mTLS (RFC 7030 §4.2.2)", security: [] } },
    guarded(async (request, reply) => {
      const current = clientCertificate(request);
      if (!current) throw new MoatError("PKI_REENROLL_CERT_UNKNOWN", "re-enrollment needs the current device certificate as the TLS client certificate");
      return enrolled(reply, await services.pki.enrollment.reenroll(current, csrOf(request.body)));
    }),
  );
}
