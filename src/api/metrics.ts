/**
 * The API's Prometheus metrics, kept with prom-client like the broker's (src/broker/metrics.ts). Each
 * API instance has its own registry (several run in one process in tests); `/metrics` renders it
 * and then the app's other sources (the broker's registry).
 */
import { Counter, Gauge, Registry } from "prom-client";
import { DEVICE_STATUSES } from "../identity/index.js";
import type { ApiServices } from "./services.js";

export interface ApiMetrics {
  registry: Registry;
  requests: Counter<"route" | "status">;
}

export function createApiMetrics(services: Pick<ApiServices, "devices">): ApiMetrics {
  const registry = new Registry();
  const registers = [registry];
  const requests = new Counter({ name: "moat_http_requests_total", help: "HTTP requests by route and status", labelNames: ["route", "status"], registers });
  new Gauge({
    name: "moat_devices",
    help: "Registered devices by status",
    labelNames: ["status"],
    registers,
    async collect() {
      const counts = await Promise.all(DEVICE_STATUSES.map(async (status) => [status, await services.devices.count({ status })] as const));
      for (const [status, count] of counts) this.set({ status }, count);
    },
  });
  return { registry, requests };
}
