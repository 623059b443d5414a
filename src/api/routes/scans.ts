import type { FastifyInstance } from "fastify";
import { toScanResult, type ScanService } from "../../scanner/index.js";
import { actorOf } from "../auth.js";
import { MAX_PAGE_ITEMS } from "../../lib/page.js";

const severities = ["critical", "high", "medium", "low", "info"] as const;
const counts = { type: "object", properties: Object.fromEntries(severities.map((s) => [s, { type: "integer" }])) } as const;
const summary = {
  type: "object",
  properties: {
    id: { type: "string" },
    startedAt: { type: "string" },
    finishedAt: { type: "string" },
    status: { type: "string", enum: ["completed", "timed-out", "aborted"] },
    targets: { type: "array", items: { type: "string" } },
    portSpec: { type: "string" },
    actor: { type: "string" },
    counts,
    openPorts: { type: "integer" },
  },
} as const;
const idParam = { type: "object", required: ["id"], properties: { id: { type: "string", maxLength: 64 } } } as const;

/**
 * /v1/scans: stored scan runs, and POST to run one. A scan started over the API stays inside
 * `scanner.allowedTargets`: the API offers no way to widen the scope (the CLI's --allow is local only).
 */
export async function scanRoutes(api: FastifyInstance, { services }: { services: { readonly scans: ScanService } }): Promise<void> {
  api.get<{ Querystring: { limit?: number; device?: string } }>(
    "/v1/scans",
    {
      config: { action: "scans:read" },
      schema: {
        tags: ["scans"],
        summary: "List scan runs, newest first",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: { limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_ITEMS }, device: { type: "string", maxLength: 128 } },
        },
        response: { 200: { type: "array", items: summary } },
      },
    },
    async (request) => services.scans.list({ ...(request.query.limit ? { limit: request.query.limit } : {}), ...(request.query.device ? { deviceId: request.query.device } : {}) }),
  );

  api.get<{ Params: { id: string } }>(
    "/v1/scans/:id",
    { config: { action: "scans:read" }, schema: { tags: ["scans"], summary: "A scan run with its findings and services", params: idParam } },
    async (request) => services.scans.get(request.params.id),
  );

  api.post<{ Body: { targets: string[]; ports?: string; credentials?: boolean; detectServices?: boolean; timeLimitSeconds?: number } }>(
    "/v1/scans",
    {
      config: { action: "scans:run" },
      schema: {
        tags: ["scans"],
        summary: "Run a scan inside scanner.allowedTargets and store it (answers when the scan is done)",
        body: {
          type: "object",
          required: ["targets"],
          additionalProperties: false,
          properties: {
            targets: { type: "array", minItems: 1, maxItems: 64, items: { type: "string", minLength: 1, maxLength: 255 } },
            ports: { type: "string", minLength: 1, maxLength: 1024 },
            credentials: { type: "boolean" },
            detectServices: { type: "boolean" },
            timeLimitSeconds: { type: "integer", minimum: 1, maximum: 3600 },
          },
        },
      },
    },
    async (request, reply) => {
      const { timeLimitSeconds, ...body } = request.body;
      const scan = await services.scans.run({ ...body, ...(timeLimitSeconds ? { timeLimitMs: timeLimitSeconds * 1000 } : {}), actor: actorOf(request) });
      return reply.code(201).send({ id: scan.id, ...toScanResult(scan), findings: scan.findings });
    },
  );
}
