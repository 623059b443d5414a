import type { FastifyInstance } from "fastify";
import { REVOCATION_REASONS, certificateView, parseRevocationReason, toPem, type Pki, type CaRegistry, type RevocationReason, type StoredCertificate } from "../../pki/index.js";
import { DEFAULT_ENROLL_TOKEN_TTL_MS, type EnrollmentTokenService } from "../../identity/index.js";
import { parseDuration } from "../../lib/duration.js";
import { actorOf } from "../auth.js";
import { MAX_PAGE_ITEMS } from "../../lib/page.js";

export interface PkiApiServices {
  readonly pki: Pki;
  readonly ca: CaRegistry;
  readonly enrollmentTokens: EnrollmentTokenService;
}

/** How a CA certificate is shown wherever the API lists CAs (`GET /v1/ca`, the dashboard's certificates view). */
export const CA_SUMMARY_PROPERTIES = {
  serial: { type: "string" },
  role: { type: "string" },
  subject: { type: "string" },
  notAfter: { type: "string" },
  active: { type: "boolean" },
  keyOnline: { type: "boolean" },
} as const;

export function caSummary(ca: StoredCertificate): { serial: string; role: string; subject: string; notAfter: string; active: boolean; keyOnline: boolean } {
  return { serial: ca.serialHex, role: ca.role, subject: ca.subject, notAfter: ca.notAfter, active: ca.active, keyOnline: ca.hasKey };
}

const reasons = Object.keys(REVOCATION_REASONS);
const certificate = {
  type: "object",
  properties: {
    serial: { type: "string" },
    deviceId: { type: "string" },
    issuer: { type: "string" },
    subject: { type: "string" },
    fingerprint: { type: "string" },
    keyKind: { type: "string" },
    notBefore: { type: "string" },
    notAfter: { type: "string" },
    status: { type: "string" },
    revokedAt: { type: ["string", "null"] },
    revocationReason: { type: ["string", "null"] },
    supersededBy: { type: ["string", "null"] },
    revokeAfter: { type: ["string", "null"] },
    certificatePem: { type: "string" },
  },
} as const;
const issued = {
  type: "object",
  properties: { serial: { type: "string" }, deviceId: { type: "string" }, notAfter: { type: "string" }, fingerprint: { type: "string" }, certificatePem: { type: "string" }, chainPem: { type: "string" } },
} as const;
const serialParam = { type: "object", required: ["serial"], properties: { serial: { type: "string", maxLength: 64 } } } as const;
const idParam = { type: "object", required: ["id"], properties: { id: { type: "string", maxLength: 128 } } } as const;

/** /v1/certificates, /v1/enrollment-tokens and /v1/ca: the operator side of the PKI. */
export async function pkiRoutes(api: FastifyInstance, { services }: { services: PkiApiServices }): Promise<void> {
  api.post<{ Body: { deviceId: string; csr: string; days?: number } }>(
    "/v1/certificates",
    {
      config: { action: "certs:issue" },
      schema: {
        tags: ["pki"],
        summary: "Issue a device certificate from a PKCS#10 CSR (PEM)",
        body: {
          type: "object",
          required: ["deviceId", "csr"],
          additionalProperties: false,
          properties: { deviceId: { type: "string", maxLength: 128 }, csr: { type: "string", maxLength: 90_000 }, days: { type: "integer", minimum: 1, maximum: 3650 } },
        },
        response: { 201: issued },
      },
    },
    async (request, reply) => {
      const result = await services.pki.certificates.issueFromCsr({ ...request.body, actor: actorOf(request) });
      return reply.code(201).send({
        serial: result.serialHex,
        deviceId: result.deviceId,
        notAfter: result.notAfter.toISOString(),
        fingerprint: result.fingerprint,
        certificatePem: result.certificatePem,
        chainPem: result.certificatePem + result.issuingCaPem,
      });
    },
  );

  api.get<{ Querystring: { deviceId?: string; status?: "active" | "revoked" | "expired" | "superseded"; expiringWithin?: string; limit?: number; after?: string } }>(
    "/v1/certificates",
    {
      config: { action: "certs:read" },
      schema: {
        tags: ["pki"],
        summary: "List certificates (keyset pagination: pass the last serial as `after`)",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            deviceId: { type: "string", maxLength: 128 },
            status: { type: "string", enum: ["active", "revoked", "expired", "superseded"] },
            expiringWithin: { type: "string", maxLength: 16, description: "e.g. 30d" },
            limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_ITEMS },
            after: { type: "string", maxLength: 64 },
          },
        },
        response: { 200: { type: "object", properties: { certificates: { type: "array", items: certificate } } } },
      },
    },
    async (request) => {
      const q = request.query;
      const records = await services.pki.certificates.list({
        ...(q.deviceId ? { deviceId: q.deviceId } : {}),
        ...(q.status ? { status: q.status } : {}),
        ...(q.expiringWithin ? { expiringBefore: new Date(Date.now() + parseDuration(q.expiringWithin, "expiringWithin")).toISOString() } : {}),
        ...(q.limit ? { limit: q.limit } : {}),
        ...(q.after ? { after: q.after } : {}),
      });
      return { certificates: records.map((r) => certificateView(r)) };
    },
  );

  api.get<{ Params: { serial: string } }>(
    "/v1/certificates/:serial",
    { config: { action: "certs:read" }, schema: { tags: ["pki"], summary: "Show a certificate", params: serialParam, response: { 200: certificate } } },
    async (request) => {
      const record = await services.pki.certificates.get(request.params.serial);
      return { ...certificateView(record), certificatePem: toPem(record.certificateDer, "CERTIFICATE") };
    },
  );

  api.post<{ Params: { serial: string }; Body: { reason?: RevocationReason } }>(
    "/v1/certificates/:serial/revoke",
    {
      config: { action: "certs:revoke" },
      schema: {
        tags: ["pki"],
        summary: "Revoke a certificate (RFC 5280 reason codes)",
        params: serialParam,
        body: { type: "object", additionalProperties: false, properties: { reason: { type: "string", enum: reasons } } },
        response: { 200: certificate },
      },
    },
    async (request) => certificateView(await services.pki.certificates.revoke(request.params.serial, parseRevocationReason(request.body?.reason), actorOf(request))),
  );

  api.post<{ Params: { id: string }; Body: { reason?: RevocationReason } }>(
    "/v1/devices/:id/certificates/revoke",
    {
      config: { action: "certs:revoke" },
      schema: {
        tags: ["pki"],
        summary: "Revoke every certificate of a device",
        params: idParam,
        body: { type: "object", additionalProperties: false, properties: { reason: { type: "string", enum: reasons } } },
        response: { 200: { type: "object", properties: { revoked: { type: "array", items: certificate } } } },
      },
    },
    async (request) => ({
      revoked: (await services.pki.certificates.revokeDevice(request.params.id, parseRevocationReason(request.body?.reason), actorOf(request))).map((r) => certificateView(r)),
    }),
  );

  api.post<{ Body: { deviceId: string; ttl?: string } }>(
    "/v1/enrollment-tokens",
    {
      config: { action: "certs:issue" },
      schema: {
        tags: ["pki"],
        summary: "Create a one-time EST enrollment token (shown once)",
        body: { type: "object", required: ["deviceId"], additionalProperties: false, properties: { deviceId: { type: "string", maxLength: 128 }, ttl: { type: "string", maxLength: 16 } } },
        response: { 201: { type: "object", properties: { token: { type: "string" }, deviceId: { type: "string" }, expiresAt: { type: "string" } } } },
      },
    },
    async (request, reply) => {
      const ttl = request.body.ttl ? parseDuration(request.body.ttl, "ttl") : DEFAULT_ENROLL_TOKEN_TTL_MS;
      const { token, record } = await services.enrollmentTokens.create(request.body.deviceId, ttl, actorOf(request));
      return reply.code(201).send({ token, deviceId: record.deviceId, expiresAt: record.expiresAt });
    },
  );

  api.get(
    "/v1/ca",
    {
      config: { action: "certs:read" },
      schema: {
        tags: ["pki"],
        summary: "Moat's CA and server certificates",
        response: {
          200: {
            type: "object",
            properties: {
              certificates: {
                type: "array",
                items: {
                  type: "object",
                  properties: { ...CA_SUMMARY_PROPERTIES, keyType: { type: "string" }, certificatePem: { type: "string" } },
                },
              },
            },
          },
        },
      },
    },
    async () => ({
      certificates: (await services.ca.list()).map((c) => ({ ...caSummary(c), keyType: c.keyType, certificatePem: c.certificatePem })),
    }),
  );
}
