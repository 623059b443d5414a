import type { FastifyInstance } from "fastify";
import { securitySummary } from "../../audit/index.js";
import type { ApiServices } from "../services.js";
import { CA_SUMMARY_PROPERTIES, caSummary } from "./pki.js";

/**
 * /v1/dashboard: the summary figures the dashboard's fleet, certificate and security views show, counted
 * in the database (never by paging through every device), so they stay fast for 100,000 devices
 * (bench/dashboard.bench.ts).
 */
export async function dashboardDataRoutes(api: FastifyInstance, { services }: { services: ApiServices }): Promise<void> {
  api.get(
    "/v1/dashboard/fleet",
    {
      config: { action: "devices:read" },
      schema: {
        tags: ["dashboard"],
        summary: "Devices per status and per group (50 largest), and how many are connected now",
        response: {
          200: {
            type: "object",
            properties: {
              total: { type: "integer" },
              byStatus: { type: "object", additionalProperties: { type: "integer" } },
              byGroup: { type: "array", items: { type: "object", properties: { group: { type: ["string", "null"] }, count: { type: "integer" } } } },
              connected: { type: "integer" },
            },
          },
        },
      },
    },
    async () => {
      const [summary, connected] = await Promise.all([services.devices.summary(), services.sessions.count()]);
      return { ...summary, connected };
    },
  );

  api.get(
    "/v1/dashboard/certificates",
    {
      config: { action: "certs:read" },
      schema: {
        tags: ["dashboard"],
        summary: "Certificates by state and expiring within 7 and 30 days; each CA with its CRL number, next update and whether it can sign (CRL and OCSP)",
        response: {
          200: {
            type: "object",
            properties: {
              certificates: { type: "object", additionalProperties: { type: "integer" } },
              cas: {
                type: "array",
                items: {
                  type: "object",
                  properties: {
                    ...CA_SUMMARY_PROPERTIES,
                    crl: { type: ["object", "null"], properties: { number: { type: "integer" }, thisUpdate: { type: "string" }, nextUpdate: { type: "string" }, current: { type: "boolean" } } },
                    ocsp: { type: "string" },
                  },
                },
              },
            },
          },
        },
      },
    },
    async () => {
      const now = new Date();
      const [certificates, cas] = await Promise.all([services.pki.certificates.summary(now), services.ca.list()]);
      return {
        certificates,
        cas: await Promise.all(
          cas.map(async (ca) => {
            // The issuing CAs sign CRLs and OCSP answers; an offline root only signs its CRL at ceremonies.
            const crl = ca.role === "issuing" ? await services.pki.crls.current(ca.serialHex, now).catch(() => null) : null;
            return {
              ...caSummary(ca),
              crl: crl ? { number: crl.number, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, current: Date.parse(crl.nextUpdate) > now.getTime() } : null,
              ocsp: ca.role !== "issuing" ? "n/a" : ca.hasKey ? "signing" : "key offline: OCSP cannot answer for this CA",
            };
          }),
        ),
      };
    },
  );

  api.get<{ Params: { id: string } }>(
    "/v1/devices/:id/credentials",
    {
      config: { action: "devices:read" },
      schema: {
        tags: ["devices"],
        summary: "A device's JWT keys and HMAC secrets by id and date (never their material)",
        params: { type: "object", required: ["id"], properties: { id: { type: "string", maxLength: 128 } } },
        response: {
          200: {
            type: "object",
            properties: {
              keys: { type: "array", items: { type: "object", properties: { keyId: { type: "string" }, createdAt: { type: "string" }, createdBy: { type: "string" } } } },
              secrets: { type: "array", items: { type: "object", properties: { secretId: { type: "string" }, createdAt: { type: "string" }, notAfter: { type: ["string", "null"] } } } },
            },
          },
        },
      },
    },
    async (request) => {
      await services.devices.get(request.params.id);
      return services.deviceCredentials.describe(request.params.id);
    },
  );

  api.get(
    "/v1/dashboard/firmware",
    {
      config: { action: "devices:read" },
      schema: {
        tags: ["dashboard"],
        summary: "Firmware across the fleet as devices report it: devices per version and the share on the latest security version",
        response: {
          200: {
            type: "object",
            properties: {
              reported: { type: "integer" },
              versions: { type: "array", items: { type: "object", properties: { version: { type: "string" }, securityVersion: { type: "integer" }, count: { type: "integer" } } } },
              latestSecurityVersion: { type: ["integer", "null"] },
              onLatest: { type: "integer" },
              latestSecurityShare: { type: "number" },
            },
          },
        },
      },
    },
    async () => services.firmwareInventory.summary(),
  );

  api.get(
    "/v1/dashboard/security",
    {
      config: { action: "audit:read" },
      schema: {
        tags: ["dashboard"],
        summary: "Authentication failures, bans, denials and limit drops per hour (24 h), top denied devices and topics, revocation-to-disconnect latency",
      },
    },
    async () => securitySummary((query) => services.audit.list(query)),
  );
}
