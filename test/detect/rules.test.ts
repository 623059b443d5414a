/**
 * Every built-in rule against its recorded stream (test/fixtures/detect, written by generate.ts):
 * the attack stream fires it, the benign twin fires nothing at all. Also the rules file model, the
 * metric store's windows, quantiles and snapshots, and the engine's consecutive/clear counting on a
 * simulated clock.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { BUILTIN_RULES, DetectionEngine, effectiveRules, MetricStore, parseRulesYaml, replayEvents, type AlertSignal } from "../../src/detect/index.js";
import { memoryPorts } from "../../src/detect/replay.js";

const FIXTURES = new URL("../fixtures/detect/", import.meta.url);
const lines = (name: string) => readFileSync(new URL(name, FIXTURES), "utf8").split("\n");
const context = (rule: string) => JSON.parse(readFileSync(new URL(`${rule}.context.json`, FIXTURES), "utf8")) as Parameters<typeof memoryPorts>[0];

describe("built-in rules on recorded streams", () => {
  for (const rule of BUILTIN_RULES) {
    it(`${rule.name}: the attack stream fires it, the benign twin fires nothing`, async () => {
      const attack = await replayEvents(lines(`${rule.name}.attack.jsonl`), BUILTIN_RULES, memoryPorts(context(rule.name)));
      expect(attack.events).toBeGreaterThan(0);
      expect(attack.alerts.map((a) => a.rule)).toContain(rule.name);
      const fired = attack.alerts.find((a) => a.rule === rule.name)!;
      expect(fired.evidence.length).toBeGreaterThan(0);
      const benign = await replayEvents(lines(`${rule.name}.benign.jsonl`), BUILTIN_RULES, memoryPorts(context(rule.name)));
      expect(benign.alerts).toEqual([]);
    });
  }

  it("credential stuffing names the /24 as its subject and asks for a range ban by default", async () => {
    const result = await replayEvents(lines("credential-stuffing.attack.jsonl"), BUILTIN_RULES, memoryPorts());
    expect(result.alerts.find((a) => a.rule === "credential-stuffing")).toMatchObject({ subject: { kind: "address-range", id: "203.0.113.0/24" }, severity: "critical" });
    expect(result.signals.find((s) => s.rule === "credential-stuffing")!.defaultActions).toEqual(["alert", "ban-range"]);
  });

  it("a disabled or raised threshold in a rules file silences the rule", async () => {
    const quiet = effectiveRules(parseRulesYaml("rules:\n  - name: topic-probing\n    static: 10\n  - name: connection-flapping\n    enabled: false\n"));
    expect((await replayEvents(lines("topic-probing.attack.jsonl"), quiet, memoryPorts())).alerts).toEqual([]);
    expect((await replayEvents(lines("connection-flapping.attack.jsonl"), quiet, memoryPorts())).alerts).toEqual([]);
  });
});

describe("the rules file model", () => {
  it("reads overrides and custom rules, keeping unnamed fields of a built-in", () => {
    const rules = parseRulesYaml(
      "rules:\n  - name: publish-rate-burst\n    static: 40\n  - name: night-chatter\n    kind: threshold\n    metric: messagesSent\n    window: 1h\n    static: 5000\n    groupPercentile: { p: 95, factor: 3 }\n    severity: low\n",
    );
    expect(rules[0]).toMatchObject({ name: "publish-rate-burst", kind: "threshold", static: 40, baseline: { factor: 10 }, window: "10s" });
    expect(rules[1]).toMatchObject({ name: "night-chatter", groupPercentile: { p: 95, factor: 3 }, defaultActions: ["alert"], consecutive: 1, clear: 3 });
    expect(effectiveRules(rules)).toHaveLength(BUILTIN_RULES.length + 1);
  });

  it.each([
    ["not yaml", "rules: [", /not valid YAML/],
    ["no rules list", "x: 1", /rules` list/],
    ["unknown field", "rules:\n  - name: topic-probing\n    treshold: 3\n", /unknown field "treshold"/],
    ["unknown metric", "rules:\n  - name: x\n    kind: threshold\n    metric: vibes\n    window: 60s\n    static: 1\n    severity: low\n", /metric must be one of/],
    ["bad window", "rules:\n  - name: x\n    kind: threshold\n    metric: messagesSent\n    window: 2m\n    static: 1\n    severity: low\n", /window must be one of/],
    ["baseline on a metric without one", "rules:\n  - name: x\n    kind: threshold\n    metric: disconnects\n    window: 60s\n    static: 1\n    baseline: { factor: 2 }\n    severity: low\n", /baseline exists for/],
    ["a built-in of another kind", "rules:\n  - name: topic-probing\n    kind: event\n", /keeps its kind/],
    ["an event rule on alerts", "rules:\n  - name: loop\n    kind: event\n    eventType: alert.raised\n    severity: low\n", /cannot watch alert events/],
    ["an unknown action", "rules:\n  - name: topic-probing\n    defaultActions: [alert, nuke]\n", /defaultActions must be one of/],
    ["a name twice", "rules:\n  - name: topic-probing\n  - name: topic-probing\n", /listed twice/],
  ])("refuses %s with DETECT_RULES_INVALID", (_label, text, message) => {
    expect(() => parseRulesYaml(text)).toThrow(expect.objectContaining({ code: "DETECT_RULES_INVALID", message: expect.stringMatching(message) }));
  });
});

describe("the metric store", () => {
  const t0 = Date.parse("2026-01-05T08:00:00Z");

  it("keeps sliding windows exact to a bucket and forgets what fell out", () => {
    const m = new MetricStore();
    for (let i = 0; i < 30; i++) m.published("d", 100, t0 + i * 1000);
    const now = t0 + 29_000;
    expect(m.counter("d", "messagesSent", "10s", now)).toBeGreaterThanOrEqual(10);
    expect(m.counter("d", "messagesSent", "10s", now)).toBeLessThanOrEqual(12);
    expect(m.counter("d", "messagesSent", "60s", now)).toBe(30);
    expect(m.counter("d", "bytesSent", "1h", now)).toBe(3000);
    expect(m.counter("d", "messagesSent", "60s", now + 120_000)).toBe(0);
    expect(m.counter("d", "messagesSent", "1h", now + 120_000)).toBe(30);
  });

  it("reads size quantiles from its histogram and counts distinct addresses and denied topics", () => {
    const m = new MetricStore();
    for (let i = 0; i < 99; i++) m.published("d", 100, t0 + i * 100);
    m.published("d", 5000, t0 + 9_950);
    const now = t0 + 9_990;
    const p50 = m.sizeQuantile("d", "60s", 0.5, now)!;
    expect(p50).toBeGreaterThan(64);
    expect(p50).toBeLessThanOrEqual(128);
    expect(m.sizeQuantile("d", "60s", 0.999, now)).toBeGreaterThan(4096);
    m.sawAddress("d", "10.0.0.1", now);
    m.sawAddress("d", "10.0.0.2", now);
    m.sawAddress("d", "10.0.0.1", now);
    expect(m.distinctAddresses("d", "60s", now)).toBe(2);
    for (const topic of ["a", "b", "a", "c"]) m.deniedTopic("d", topic, now);
    expect(m.view("d", "60s", now)).toMatchObject({ deniedTopics: 3, deniedPublishes: 4, sourceAddresses: 2 });
  });

  it("restores a snapshot to the same state", () => {
    const m = new MetricStore();
    for (let i = 0; i < 50; i++) m.published(`d${i % 5}`, 100 + i, t0 + i * 500);
    m.setGroup("d1", "boilers", t0);
    m.deniedTopic("d2", "x/y", t0 + 20_000);
    const now = t0 + 25_000;
    const restored = MetricStore.restore(JSON.parse(JSON.stringify(m.snapshot())));
    for (const id of ["d0", "d1", "d2", "d3", "d4"]) expect(restored.view(id, "1h", now)).toEqual(m.view(id, "1h", now));
    expect(restored.groupOf("d1")).toBe("boilers");
    expect(restored.rateBaseline("d1")).toBe(m.rateBaseline("d1"));
    expect(() => MetricStore.restore({ ...m.snapshot(), wide: "AAAA" })).toThrow(/do not match/);
  });
});

describe("the engine on a simulated clock", () => {
  it("fires after `consecutive` breaching seconds, once while firing, and again only after `clear` quiet seconds", async () => {
    let clock = Date.parse("2026-01-05T08:00:00Z");
    const signals: AlertSignal[] = [];
    const rules = effectiveRules(parseRulesYaml("rules:\n  - name: connection-flapping\n    consecutive: 2\n    clear: 5\n"));
    const engine = new DetectionEngine({ rules, ports: memoryPorts(), now: () => clock, onAlert: (s) => signals.push(s) });
    const connect = () => engine.ingest({ type: "device.connected", subject: "r1", data: { address: "10.0.0.1" } });
    for (let i = 0; i < 10; i++) connect();
    expect(signals).toHaveLength(0); // one breaching data point so far
    clock += 1000;
    connect();
    expect(signals.map((s) => s.rule)).toEqual(["connection-flapping"]);
    clock += 1000;
    connect();
    expect(signals).toHaveLength(1);
    // 60 s later the window has emptied; five quiet ticks clear the rule, and a new storm fires again.
    clock += 61_000;
    for (let i = 0; i < 6; i++) {
      clock += 1000;
      engine.tick(clock);
    }
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < 11; i++) connect();
      clock += 1000;
    }
    expect(signals).toHaveLength(2);
    await engine.settle();
  });
});
