import type { FastifyInstance } from "fastify";
import { MAX_ALLOWED_CIDRS, MAX_MIN_SECURITY_VERSION, type GroupSettingsPatch } from "../../identity/index.js";
import { actorOf } from "../auth.js";
import type { ApiServices } from "../services.js";

const group = {
  type: "object",
  properties: {
    group: { type: "string" },
    allowedCidrs: { type: ["array", "null"], items: { type: "string" } },
    silenceWindow: { type: ["string", "null"] },
    silenceWindowMs: { type: ["integer", "null"] },
    minSecurityVersion: { type: ["integer", "null"] },
    devices: { type: "integer" },
    updatedAt: { type: ["string", "null"] },
    updatedBy: { type: ["string", "null"] },
  },
} as const;
const groupParam = { type: "object", required: ["group"], properties: { group: { type: "string", maxLength: 64 } } } as const;

/** /v1/groups: device groups and their settings (read by detection and posture). */
export async function groupRoutes(api: FastifyInstance, { services }: { services: ApiServices }): Promise<void> {
  api.get(
    "/v1/groups",
    {
      config: { action: "groups:read" },
      schema: { tags: ["groups"], summary: "List every group that has devices or settings", response: { 200: { type: "array", items: group } } },
    },
    async () => services.groups.list(),
  );

  api.get<{ Params: { group: string } }>(
    "/v1/groups/:group",
    { config: { action: "groups:read" }, schema: { tags: ["groups"], summary: "A group's settings (unset settings are null)", params: groupParam, response: { 200: group } } },
    async (request) => services.groups.get(request.params.group),
  );

  api.put<{ Params: { group: string }; Body: GroupSettingsPatch }>(
    "/v1/groups/:group",
    {
      config: { action: "groups:write" },
      schema: {
        tags: ["groups"],
        summary: "Change a group's settings: a field given sets it, null unsets it, a field left out stays",
        params: groupParam,
        body: {
          type: "object",
          additionalProperties: false,
          minProperties: 1,
          properties: {
            allowedCidrs: { type: ["array", "null"], maxItems: MAX_ALLOWED_CIDRS, items: { type: "string", maxLength: 64 } },
            silenceWindow: { type: ["string", "null"], maxLength: 16 },
            minSecurityVersion: { type: ["integer", "null"], minimum: 0, maximum: MAX_MIN_SECURITY_VERSION },
          },
        },
        response: { 200: group },
      },
    },
    async (request) => services.groups.set(request.params.group, request.body, actorOf(request)),
  );
}
