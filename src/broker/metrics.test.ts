import { describe, expect, it } from "vitest";
import { createBrokerMetrics } from "./metrics.js";

describe("broker metrics (prom-client)", () => {
  it("renders every metric by its documented name, one series per label set, connections read at scrape time", async () => {
    let open = 3;
    const metrics = createBrokerMetrics(() => open);
    // One series however the labels are spelled; it renders them as first given (the declared order at every call site).
    metrics.denials.inc({ action: "publish", reason: "policy" });
    metrics.denials.inc({ reason: "policy", action: "publish" });
    metrics.connectsAccepted.inc({ method: "mtls" });
    metrics.enforcementLatency.observe(0.02);
    open = 5;
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^moat_mqtt_denials_total\{action="publish",reason="policy"\} 2$/m);
    expect(text).toMatch(/^moat_mqtt_connects_total\{method="mtls"\} 1$/m);
    expect(text).toMatch(/^moat_mqtt_connections 5$/m);
    expect(text).toMatch(/^moat_mqtt_messages_in_total 0$/m);
    expect(text).toMatch(/^moat_mqtt_enforcement_seconds_bucket\{le="0.01"\} 0$/m);
    expect(text).toMatch(/^moat_mqtt_enforcement_seconds_bucket\{le="0.025"\} 1$/m);
    for (const name of ["moat_mqtt_auth_failures_total", "moat_mqtt_sessions_closed_total", "moat_mqtt_messages_out_total"]) expect(text).toContain(`# TYPE ${name} counter`);
  });

  it("gives each broker its own registry", async () => {
    const a = createBrokerMetrics(() => 0);
    const b = createBrokerMetrics(() => 0);
    a.messagesIn.inc();
    expect(await b.registry.metrics()).toMatch(/^moat_mqtt_messages_in_total 0$/m);
  });
});
