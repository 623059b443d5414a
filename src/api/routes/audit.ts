import type { FastifyInstance } from "fastify";
import type { ApiServices } from "../services.js";
import { MAX_PAGE_ITEMS } from "../../lib/page.js";

/** /v1/audit: the security event log and its chain verification. */
export async function auditRoutes(api: FastifyInstance, { services }: { services: ApiServices }): Promise<void> {
  api.get<{ Querystring: { type?: string; subject?: string; limit?: number; afterSeq?: number } }>(
    "/v1/audit/events",
    {
      config: { action: "audit:read" },
      schema: {
        tags: ["audit"],
        summary: "List security events, newest first",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            type: { type: "string", maxLength: 64 },
            subject: { type: "string", maxLength: 256 },
            limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_ITEMS },
            afterSeq: { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
          },
        },
      },
    },
    async (request) => services.audit.list(request.query),
  );

  api.get(
    "/v1/audit/checkpoint",
    {
      config: { action: "audit:read" },
      schema: {
        tags: ["audit"],
        summary: "The last signed checkpoint of the audit log (null before the first)",
        response: {
          200: {
            type: "object",
            properties: {
              checkpoint: { type: ["object", "null"], properties: { size: { type: "integer" }, rootHash: { type: "string" }, createdAt: { type: "string" }, note: { type: "string" } } },
            },
          },
        },
      },
    },
    async () => {
      const latest = await services.auditCheckpoints.latest();
      return { checkpoint: latest ? { size: latest.record.size, rootHash: latest.record.rootHash.toString("hex"), createdAt: latest.record.createdAt, note: latest.record.note } : null };
    },
  );

  api.get(
    "/v1/audit/verify",
    { config: { action: "audit:read" }, schema: { tags: ["audit"], summary: "Verify the audit hash chain" } },
    async () => services.audit.verify(),
  );
}
