import type { FastifyInstance } from "fastify";
import { MoatError } from "../../errors.js";
import { certificateStatus, parseCertificate } from "../../pki/index.js";
import type { ApiServices } from "../services.js";
import { clientCertificate } from "./est.js";

const STATUS_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["deviceId", "status", "certificate"],
  properties: {
    deviceId: { type: "string", maxLength: 256 },
    status: { type: "string", maxLength: 32 },
    certificate: {
      type: "object",
      additionalProperties: false,
      required: ["serial", "status", "revocationReason", "notAfter"],
      properties: {
        serial: { type: "string", maxLength: 64 },
        status: { type: "string", maxLength: 32 },
        revocationReason: { type: ["string", "null"], maxLength: 64 },
        notAfter: { type: "string", maxLength: 64 },
      },
    },
  },
} as const;

/**
 * `GET /v1/device/status`: a device asks, with its own certificate as the TLS client certificate, what
 * the server holds about it: its registry status and the status of that certificate. The broker
 * refuses a revoked, suspended or decommissioned device with the same CONNACK code as any other
 * refusal; this is how the device SDK tells "stop for good" from "try again later" (docs/device-sdk.md).
 * The TLS handshake proves the device holds the certificate's key, and it learns only about itself.
 * Revoked and expired certificates are answered too: that is the point.
 */
export async function deviceSelfRoutes(api: FastifyInstance, { services }: { services: ApiServices }): Promise<void> {
  api.get(
    "/v1/device/status",
    { config: { public: true }, schema: { tags: ["est"], summary: "The calling device's own status, authenticated by its certificate over mTLS", security: [], response: { 200: STATUS_SCHEMA } } },
    async (request) => {
      const der = clientCertificate(request);
      if (!der) throw new MoatError("PKI_REENROLL_CERT_UNKNOWN", "present the device certificate as the TLS client certificate");
      let serialHex: string;
      try {
        serialHex = parseCertificate(der).serialHex;
      } catch (cause) {
        throw new MoatError("PKI_REENROLL_CERT_UNKNOWN", "the client certificate cannot be read", { cause });
      }
      const record = await services.pki.certificates.get(serialHex).catch(() => undefined);
      // Only the exact certificate Moat issued answers; a look-alike with the same serial learns nothing.
      if (!record || !record.certificateDer.equals(der)) throw new MoatError("PKI_REENROLL_CERT_UNKNOWN", "the client certificate was not issued by Moat");
      const device = await services.devices.get(record.deviceId);
      return {
        deviceId: device.id,
        status: device.status,
        certificate: { serial: record.serialHex, status: certificateStatus(record), revocationReason: record.revocationReason, notAfter: record.notAfter },
      };
    },
  );
}
