import type { FastifyInstance } from "fastify";
import { EVENT_TYPE_FILTER_PATTERN, type EventStreamHub } from "../event-stream.js";

/** /v1/events/stream: live security events as server-sent events (docs/events-stream.md). */
export async function eventRoutes(api: FastifyInstance, { hub }: { hub: EventStreamHub }): Promise<void> {
  api.get<{ Querystring: { type?: string; device?: string } }>(
    "/v1/events/stream",
    {
      config: { action: "events:read", stream: true },
      schema: {
        tags: ["events"],
        summary: "Follow security events live (text/event-stream), filtered by what the token may read",
        description:
          "Each event is one `data:` line of JSON `{ type, severity, actor, subject, data, time }` with an `id:`; a comment line every 15 s is the heartbeat. " +
          "`type` takes comma-separated types, each exact or a prefix (`device.*`); `device` keeps events about that device. " +
          "The stream ends with `event: end` when the token is revoked or expires; a client that falls behind is dropped.",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            type: { type: "string", maxLength: 256, pattern: EVENT_TYPE_FILTER_PATTERN },
            device: { type: "string", minLength: 1, maxLength: 128 },
          },
        },
        response: { 200: { description: "text/event-stream", content: { "text/event-stream": { schema: { type: "string" } } } } },
      },
    },
    async (request, reply) => {
      const stream = hub.open(request.operator!, { types: request.query.type, device: request.query.device });
      reply.raw.once("close", () => stream.destroy());
      // no-store and the other security headers come from the server's onSend hook; no-transform keeps
      // proxies from buffering or compressing the stream.
      return reply.code(200).header("content-type", "text/event-stream; charset=utf-8").header("x-accel-buffering", "no").send(stream);
    },
  );
}
