import { describe, expect, it } from "vitest";
import { createApiMetrics } from "./metrics.js";

describe("API metrics (prom-client)", () => {
  it("counts requests by route and status and reads device counts at scrape time", async () => {
    const counts: Record<string, number> = { active: 2, quarantined: 1 };
    const metrics = createApiMetrics({ devices: { count: async ({ status }: { status?: string } = {}) => counts[status ?? ""] ?? 0 } } as never);
    metrics.requests.inc({ route: "/v1/devices", status: "201" });
    counts.active = 4;
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^moat_http_requests_total\{route="\/v1\/devices",status="201"\} 1$/m);
    expect(text).toMatch(/^moat_devices\{status="active"\} 4$/m);
    expect(text).toMatch(/^moat_devices\{status="quarantined"\} 1$/m);
    expect(metrics.registry.contentType).toContain("text/plain; version=0.0.4");
  });
});
