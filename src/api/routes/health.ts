import type { FastifyInstance } from "fastify";
import type { DeviceStatus } from "../../identity/index.js";
import { DEVICE_STATUSES } from "../../identity/index.js";
import { gauge, type Counter } from "../metrics.js";
import { sendProblem, problemOf } from "../problem.js";
import type { ApiServices } from "../services.js";

/** Liveness, readiness and Prometheus metrics. */
export async function healthRoutes(api: FastifyInstance, { services, requests }: { services: ApiServices; requests: Counter }): Promise<void> {
  api.get("/healthz", { config: { public: true }, schema: { tags: ["health"], summary: "Liveness" } }, async () => ({ status: "ok" }));

  api.get("/readyz", { config: { public: true }, schema: { tags: ["health"], summary: "Readiness (database answers)" } }, async (_request, reply) => {
    if (await services.ready()) return { status: "ready" };
    return sendProblem(reply, problemOf("STORE_UNREACHABLE", "the database does not answer"));
  });

  api.get("/metrics", { config: { action: "metrics:read" }, schema: { tags: ["health"], summary: "Prometheus metrics" } }, async (_request, reply) => {
    const counts = await Promise.all(DEVICE_STATUSES.map(async (status: DeviceStatus) => [{ status }, await services.devices.count({ status })] as [Record<string, string>, number]));
    const parts = [requests.render(), gauge("moat_devices", "Registered devices by status", counts)];
    for (const source of services.metricsSources) parts.push(await source());
    return reply.type("text/plain; version=0.0.4").send(parts.join(""));
  });
}
