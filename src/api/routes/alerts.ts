import type { FastifyInstance } from "fastify";
import { ALERT_STATUSES } from "../../detect/index.js";
import { MAX_PAGE_ITEMS } from "../../lib/page.js";
import { actorOf } from "../auth.js";
import type { ApiServices } from "../services.js";

const evidence = { type: "array", items: { type: "object", additionalProperties: true } } as const;
const alert = {
  type: "object",
  properties: {
    id: { type: "string" },
    rule: { type: "string" },
    subject: { type: "object", properties: { kind: { type: "string" }, id: { type: "string" } } },
    severity: { type: "string" },
    status: { type: "string", enum: [...ALERT_STATUSES] },
    count: { type: "integer" },
    firstSeen: { type: "string" },
    lastSeen: { type: "string" },
    evidence,
    acknowledgedBy: { type: ["string", "null"] },
    resolvedBy: { type: ["string", "null"] },
  },
} as const;
const idParam = { type: "object", required: ["id"], properties: { id: { type: "string", maxLength: 64 } } } as const;
const rule = { type: "object", additionalProperties: true, properties: { name: { type: "string" }, kind: { type: "string" }, enabled: { type: "boolean" } } } as const;

/** /v1/alerts and /v1/detect/rules: what detection raised, and the rules it runs. */
export async function alertRoutes(api: FastifyInstance, { services }: { services: ApiServices }): Promise<void> {
  api.get<{ Querystring: { device?: string; open?: "true" | "false"; rule?: string; limit?: number; after?: string } }>(
    "/v1/alerts",
    {
      config: { action: "alerts:read" },
      schema: {
        tags: ["detect"],
        summary: "List alerts, newest first (keyset pagination: pass `next` as `after`)",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            device: { type: "string", maxLength: 128 },
            open: { type: "string", enum: ["true", "false"], description: "true: only open or acknowledged alerts" },
            rule: { type: "string", maxLength: 64 },
            limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_ITEMS },
            after: { type: "string", maxLength: 64 },
          },
        },
        response: { 200: { type: "object", properties: { alerts: { type: "array", items: alert }, next: { type: ["string", "null"] } } } },
      },
    },
    async (request) => {
      const q = request.query;
      return services.alerts.list({ ...(q.device ? { deviceId: q.device } : {}), ...(q.open === "true" ? { open: true } : {}), ...(q.rule ? { rule: q.rule } : {}), ...(q.limit ? { limit: q.limit } : {}), ...(q.after ? { after: q.after } : {}) });
    },
  );

  api.get<{ Params: { id: string } }>(
    "/v1/alerts/:id",
    { config: { action: "alerts:read" }, schema: { tags: ["detect"], summary: "One alert with its evidence", params: idParam, response: { 200: alert } } },
    async (request) => services.alerts.get(request.params.id),
  );

  for (const [verb, summary] of [
    ["ack", "Acknowledge an alert (someone is on it); a new firing still counts into it"],
    ["resolve", "Resolve an alert; the next firing of its rule opens a new one"],
  ] as const)
    api.post<{ Params: { id: string } }>(
      `/v1/alerts/:id/${verb}`,
      { config: { action: "alerts:write" }, schema: { tags: ["detect"], summary, params: idParam, response: { 200: alert } } },
      async (request) => (verb === "ack" ? services.alerts.acknowledge(request.params.id, actorOf(request)) : services.alerts.resolve(request.params.id, actorOf(request))),
    );

  api.get(
    "/v1/detect/rules",
    { config: { action: "detect:read" }, schema: { tags: ["detect"], summary: "The detection rules in force (built-ins, overridden ones and custom ones)", response: { 200: { type: "array", items: rule } } } },
    async () => services.detectRules.list(),
  );

  api.put<{ Body: { yaml: string } }>(
    "/v1/detect/rules",
    {
      config: { action: "detect:write" },
      schema: {
        tags: ["detect"],
        summary: "Replace the stored rules with a rules file (YAML text, as `moat detect rules apply`); running servers reload them",
        body: { type: "object", required: ["yaml"], additionalProperties: false, properties: { yaml: { type: "string", maxLength: 262_144 } } },
        response: { 200: { type: "array", items: rule } },
      },
    },
    async (request) => services.detectRules.apply(request.body.yaml, actorOf(request)),
  );
}
