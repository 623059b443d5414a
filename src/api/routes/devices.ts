import type { FastifyInstance, FastifyRequest } from "fastify";
import { DEVICE_STATUSES, type DeviceStatus } from "../../identity/index.js";
import { actorOf, requirePermission } from "../auth.js";
import type { ApiServices } from "../services.js";
import { MAX_PAGE_ITEMS } from "../../lib/page.js";

const attributes = { type: "object", additionalProperties: { type: "string", maxLength: 256 }, maxProperties: 64 } as const;
const device = {
  type: "object",
  properties: {
    id: { type: "string" },
    name: { type: "string" },
    group: { type: ["string", "null"] },
    role: { type: "string" },
    status: { type: "string", enum: [...DEVICE_STATUSES] },
    attributes,
    createdAt: { type: "string" },
    updatedAt: { type: "string" },
    lastSeenAt: { type: ["string", "null"] },
    lastSeenAddress: { type: ["string", "null"] },
  },
} as const;
const idParam = { type: "object", required: ["id"], properties: { id: { type: "string", maxLength: 128 } } } as const;

/** A device's role is a role assignment, whoever may otherwise edit the device. */
const ROLE_FIELD = { role: "roles:write" } as const;

/**
 * Joining or leaving a group that carries role assignments changes the device's roles, so it needs
 * `roles:write` too; moving between groups without roles is ordinary device management.
 */
async function authorizeGroupChange(services: ApiServices, request: FastifyRequest, from: string | null, to: string | null | undefined): Promise<void> {
  if (to === undefined || (to ?? null) === from) return;
  const groups = [from, to].filter((g): g is string => typeof g === "string" && g !== "");
  for (const group of groups) if (await services.policy.groupHoldsRoles(group)) return requirePermission(services, request, "roles:write", "group");
}

/** /v1/devices: the device registry. */
export async function deviceRoutes(api: FastifyInstance, { services }: { services: ApiServices }): Promise<void> {
  api.post<{ Body: { id: string; name?: string; group?: string | null; role?: string; status?: "pending" | "active"; attributes?: Record<string, string> } }>(
    "/v1/devices",
    {
      config: { action: "devices:write", fields: ROLE_FIELD },
      schema: {
        tags: ["devices"],
        summary: "Register a device (setting `role` also needs roles:write)",
        body: {
          type: "object",
          required: ["id"],
          additionalProperties: false,
          properties: {
            id: { type: "string", maxLength: 128 },
            name: { type: "string", maxLength: 200 },
            group: { type: ["string", "null"], maxLength: 64 },
            role: { type: "string", maxLength: 64 },
            status: { type: "string", enum: ["pending", "active"] },
            attributes,
          },
        },
        response: { 201: device },
      },
    },
    async (request, reply) => {
      await authorizeGroupChange(services, request, null, request.body.group);
      return reply.code(201).send(await services.devices.create(request.body, actorOf(request)));
    },
  );

  api.get<{ Querystring: { status?: DeviceStatus; group?: string; role?: string; search?: string; limit?: number; after?: string } }>(
    "/v1/devices",
    {
      config: { action: "devices:read" },
      schema: {
        tags: ["devices"],
        summary: "List devices (keyset pagination: pass `next` as `after`)",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            status: { type: "string", enum: [...DEVICE_STATUSES] },
            group: { type: "string", maxLength: 64 },
            role: { type: "string", maxLength: 64 },
            search: { type: "string", maxLength: 128 },
            limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_ITEMS },
            after: { type: "string", maxLength: 128 },
          },
        },
        response: { 200: { type: "object", properties: { devices: { type: "array", items: device }, next: { type: ["string", "null"] } } } },
      },
    },
    async (request) => services.devices.list(request.query),
  );

  api.get<{ Params: { id: string } }>(
    "/v1/devices/:id",
    { config: { action: "devices:read" }, schema: { tags: ["devices"], summary: "Get a device", params: idParam, response: { 200: device } } },
    async (request) => services.devices.get(request.params.id),
  );

  api.get<{ Params: { id: string } }>(
    "/v1/devices/:id/firmware",
    {
      config: { action: "devices:read" },
      schema: {
        tags: ["devices"],
        summary: "The firmware the device last reported running (null until it reports)",
        params: idParam,
        response: {
          200: {
            type: ["object", "null"],
            properties: { deviceId: { type: "string" }, version: { type: "string" }, securityVersion: { type: "integer" }, reportedAt: { type: "string" }, source: { type: "string" } },
          },
        },
      },
    },
    async (request) => services.firmwareInventory.get(request.params.id),
  );

  api.patch<{ Params: { id: string }; Body: { name?: string; group?: string | null; role?: string; attributes?: Record<string, string> } }>(
    "/v1/devices/:id",
    {
      config: { action: "devices:write", fields: ROLE_FIELD },
      schema: {
        tags: ["devices"],
        summary: "Update name, group, role or attributes (a role, or a group that carries roles, also needs roles:write)",
        params: idParam,
        body: {
          type: "object",
          additionalProperties: false,
          minProperties: 1,
          properties: { name: { type: "string", maxLength: 200 }, group: { type: ["string", "null"], maxLength: 64 }, role: { type: "string", maxLength: 64 }, attributes },
        },
        response: { 200: device },
      },
    },
    async (request) => {
      if (request.body.group !== undefined) await authorizeGroupChange(services, request, (await services.devices.get(request.params.id)).group, request.body.group);
      return services.devices.update(request.params.id, request.body, actorOf(request));
    },
  );

  api.post<{ Params: { id: string }; Body: { status: DeviceStatus; reason?: string } }>(
    "/v1/devices/:id/status",
    {
      config: { action: "devices:write" },
      schema: {
        tags: ["devices"],
        summary: "Change status (activate, suspend, quarantine, decommission)",
        params: idParam,
        body: {
          type: "object",
          required: ["status"],
          additionalProperties: false,
          properties: { status: { type: "string", enum: [...DEVICE_STATUSES] }, reason: { type: "string", maxLength: 500 } },
        },
        response: { 200: device },
      },
    },
    async (request) => services.devices.setStatus(request.params.id, request.body.status, actorOf(request), request.body.reason),
  );
}
