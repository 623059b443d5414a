/**
 * The same policy answers on both data planes: devices, roles (variables, denies, group and device
 * assignments, a quarantined device, an unsafe attribute value) and topics are generated, and what
 * Mosquitto under Moat's control allows and refuses (PUBACK and SUBACK reason codes, deliveries seen by
 * MQTT.js) is compared with Moat's own decision, the one `moat policy check` prints.
 *
 * One difference is expected and checked separately (docs/broker.md, "What dynamic security cannot
 * express"): a wildcard subscription that a deny rule overlaps without covering is refused by Moat and
 * granted by Mosquitto, which then withholds every denied topic at delivery.
 */
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { filterCovers, parseFilterTemplate, substituteFilter, topicMatches } from "../../src/policy/index.js";
import { MosquittoHarness, mosquittoAvailable, publishReason, subscribeGranted, waitUntil, type DeviceCert } from "./harness.js";

const ok = mosquittoAvailable();

const ROLES = {
  "dev-a": [
    ["allow", "publish", "devices/${device.id}/#"],
    ["deny", "publish", "devices/${device.id}/secret/#"],
    ["allow", "publish", "sensor-${device.id}/x"],
    ["allow", "subscribe", "rooms/${device.attr.room}/#"],
    ["allow", "receive", "rooms/${device.attr.room}/#"],
    ["deny", "receive", "rooms/+/private/#"],
    ["allow", "subscribe", "groups/${device.group}/+"],
    ["allow", "receive", "groups/${device.group}/+"],
  ],
  "dev-b": [
    ["allow", "subscribe", "fleet/#"],
    ["deny", "subscribe", "fleet/+/secret/#"],
    ["allow", "receive", "fleet/#"],
    ["allow", "publish", "fleet/${device.group}/up"],
    ["deny", "publish", "fleet/g2/#"],
  ],
  probe: [["allow", "publish", "#"]],
} as const;

/** id → registry facts; p3 gets dev-b through its group, p5 through a device assignment. */
const DEVICES: { id: string; role: string; group?: string; attributes?: Record<string, string>; quarantine?: boolean }[] = [
  { id: "p1", role: "dev-a", group: "g1", attributes: { room: "r1" } },
  { id: "p2", role: "dev-a", group: "g2", attributes: { room: "#" } },
  { id: "p3", role: "device", group: "g1", attributes: { room: "r2" } },
  { id: "p4", role: "dev-a", group: "g1", attributes: { room: "r1" }, quarantine: true },
  { id: "p5", role: "device", attributes: { room: "r2" } },
  { id: "p6", role: "dev-b", group: "g2" },
];

const TOPICS = [
  "devices/p1/a",
  "devices/p1/secret/k",
  "devices/p2/a",
  "devices/p3/telemetry/t",
  "devices/p4/status",
  "devices/p4/a",
  "sensor-p1/x",
  "rooms/r1/t",
  "rooms/r1/private/x",
  "rooms/r2/t",
  "groups/g1/x",
  "groups/g2/x",
  "groups/g1/x/y",
  "fleet/a/b",
  "fleet/a/secret/c",
  "fleet/g1/up",
  "fleet/g2/up",
];

const FILTERS = [
  "rooms/r1/#",
  "rooms/r1/t",
  "rooms/+/t",
  "rooms/#/x".replace("/#/x", "/+/x"),
  "groups/g1/+",
  "groups/g1/x",
  "groups/+/x",
  "fleet/#",
  "fleet/a/b",
  "fleet/+/secret/#",
  "fleet/a/#",
  "devices/p1/#",
  "devices/p3/commands/#",
  "#",
  "$SYS/#",
];

describe.skipIf(!ok)("policy differential: Mosquitto under Moat's control answers as Moat's policy does", () => {
  const h = new MosquittoHarness();
  const certs = new Map<string, DeviceCert>();
  let probe: DeviceCert;

  const moat = async (id: string, action: "publish" | "subscribe" | "receive", topic: string) => h.app.policy.explain(id, action, topic, { certCn: id });

  beforeAll(async () => {
    await h.init();
    for (const [name, rules] of Object.entries(ROLES))
      await h.app.policy.createRole(
        name,
        rules.map(([effect, action, resource]) => ({ effect, action, resource })),
        "test",
      );
    for (const d of DEVICES) {
      certs.set(d.id, await h.device(d.id, { role: d.role, ...(d.group ? { group: d.group } : {}), ...(d.attributes ? { attributes: d.attributes } : {}) }));
      if (d.quarantine) await h.app.devices.setStatus(d.id, "quarantined", "test");
    }
    await h.app.policy.assignRole("dev-b", { kind: "group", target: "g1" }, "test");
    await h.app.policy.assignRole("dev-b", { kind: "device", target: "p5" }, "test");
    probe = await h.device("probe", { role: "probe" });
    await h.startServe();
  }, 90_000);

  afterAll(async () => {
    await h.close();
  });

  it("publish: every (device, topic) gets Moat's answer as its PUBACK", async () => {
    const mismatches: string[] = [];
    let allowed = 0;
    for (const d of DEVICES) {
      const client = await h.connect(certs.get(d.id)!);
      for (const topic of TOPICS) {
        const want = (await moat(d.id, "publish", topic)).allow;
        const code = await publishReason(client, topic);
        if (want) allowed += 1;
        if (want !== code < 128) mismatches.push(`${d.id} publish ${topic}: moat ${want ? "allow" : "deny"}, mosquitto reason ${code}`);
      }
      client.end(true);
    }
    expect(mismatches).toEqual([]);
    // The generated cases exercise both answers.
    expect(allowed).toBeGreaterThan(5);
  });

  it("subscribe and receive: SUBACKs match Moat, and deliveries are exactly what Moat allows", async () => {
    const mismatches: string[] = [];
    let overlapOnly = 0;
    let overlapGranted = 0;
    let delivered = 0;
    for (const d of DEVICES) {
      const subject = { id: d.id, group: d.group ?? null, status: d.quarantine ? "quarantined" : "active", attributes: d.attributes ?? {}, certCn: d.id };
      const client: MqttClient = await h.connect(certs.get(d.id)!);
      const granted = await subscribeGranted(client, FILTERS);
      const mosquittoGranted: string[] = [];
      for (const [i, filter] of FILTERS.entries()) {
        const decision = await moat(d.id, "subscribe", filter);
        const mosquittoAllows = granted[i]! < 128;
        if (mosquittoAllows) mosquittoGranted.push(filter);
        const denyFilter = decision.rule && decision.rule.effect === "deny" ? substituteFilter(parseFilterTemplate(decision.rule.resource), subject) : null;
        if (!decision.allow && denyFilter !== null && !filterCovers(denyFilter, filter)) {
          // Refused by Moat because a deny overlaps the request; Mosquitto may grant it (checked at delivery below).
          overlapOnly += 1;
          if (mosquittoAllows) overlapGranted += 1;
          continue;
        }
        if (decision.allow !== mosquittoAllows) mismatches.push(`${d.id} subscribe ${filter}: moat ${decision.allow ? "allow" : "deny"}, mosquitto ${granted[i]}`);
      }
      const received = new Set<string>();
      client.on("message", (topic) => received.add(topic));
      const sender = await h.connect(probe, { clientId: `probe-${d.id}` });
      for (const topic of TOPICS) expect(await publishReason(sender, topic)).toBeLessThan(128);
      sender.end(true);
      const expected = new Set<string>();
      for (const topic of TOPICS) {
        if (!mosquittoGranted.some((filter) => topicMatches(filter, topic))) continue;
        // Delivered only where Moat allows receiving it and the device could subscribe to it by name.
        if ((await moat(d.id, "receive", topic)).allow && (await moat(d.id, "subscribe", topic)).allow) expected.add(topic);
      }
      // Deliveries are asynchronous: wait for the expected ones, then give stray ones a moment to show.
      await waitUntil(`deliveries to ${d.id}`, () => ([...expected].every((t) => received.has(t)) ? true : undefined), 5_000).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      const got = [...received].sort();
      delivered += got.length;
      if (JSON.stringify(got) !== JSON.stringify([...expected].sort())) mismatches.push(`${d.id} received ${JSON.stringify(got)}, expected ${JSON.stringify([...expected].sort())}`);
      client.end(true);
    }
    expect(mismatches).toEqual([]);
    // The one documented difference occurred (Mosquitto granted what Moat refused) and deliveries still matched.
    expect(overlapOnly).toBeGreaterThan(0);
    expect(overlapGranted).toBeGreaterThan(0);
    expect(delivered).toBeGreaterThan(5);
  });

  it("moat policy check (the CLI) gives the answers the comparison used", async () => {
    const check = await h.cli(["policy", "check", "--device", "p1", "--action", "publish", "--topic", "devices/p1/secret/k", "--json"]);
    expect(check.code).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ allow: false });
    const allowed = await h.cli(["policy", "check", "--device", "p6", "--action", "subscribe", "--topic", "fleet/a/b", "--json"]);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ allow: true });
  });
});
