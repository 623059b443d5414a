import type { FastifyInstance } from "fastify";
import type { SessionService } from "../../sessions/index.js";
import { MAX_PAGE_ITEMS } from "../../lib/page.js";

const session = {
  type: "object",
  properties: {
    sessionId: { type: "string" },
    deviceId: { type: "string" },
    clientId: { type: "string" },
    nodeId: { type: "string" },
    address: { type: ["string", "null"] },
    listener: { type: ["string", "null"] },
    method: { type: ["string", "null"] },
    certSerial: { type: ["string", "null"] },
    credentialId: { type: ["string", "null"] },
    connectedAt: { type: "string" },
  },
} as const;

/** /v1/sessions: who is connected now (live MQTT sessions on live nodes), and client-id takeovers. */
export async function sessionRoutes(api: FastifyInstance, { services }: { services: { readonly sessions: SessionService } }): Promise<void> {
  api.get<{ Querystring: { device?: string; limit?: number; after?: string } }>(
    "/v1/sessions",
    {
      config: { action: "sessions:read" },
      schema: {
        tags: ["sessions"],
        summary: "Live MQTT sessions, by session id; `next` pages on; `count` is every live session",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            device: { type: "string", maxLength: 128 },
            limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_ITEMS },
            after: { type: "string", maxLength: 128 },
          },
        },
        response: { 200: { type: "object", properties: { count: { type: "integer" }, sessions: { type: "array", items: session }, next: { type: ["string", "null"] } } } },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 100;
      const sessions = await services.sessions.list({ limit, ...(request.query.device ? { deviceId: request.query.device } : {}), ...(request.query.after ? { after: request.query.after } : {}) });
      return { count: await services.sessions.count(), sessions, next: sessions.length === limit ? sessions.at(-1)!.sessionId : null };
    },
  );

  api.get<{ Querystring: { device?: string; since?: string; limit?: number } }>(
    "/v1/sessions/takeovers",
    {
      config: { action: "sessions:read" },
      schema: {
        tags: ["sessions"],
        summary: "Client-id takeovers (a connection that replaced a live one with the same client id), newest first",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            device: { type: "string", maxLength: 128 },
            since: { type: "string", format: "date-time", maxLength: 40 },
            limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_ITEMS },
          },
        },
      },
    },
    async (request) =>
      services.sessions.takeovers({
        ...(request.query.device ? { deviceId: request.query.device } : {}),
        ...(request.query.since ? { since: new Date(request.query.since).toISOString() } : {}),
        ...(request.query.limit ? { limit: request.query.limit } : {}),
      }),
  );
}
