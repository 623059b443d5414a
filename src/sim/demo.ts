import { randomBytes } from "node:crypto";
import { Keyring, PayloadOpener, PayloadSealer } from "../crypto/index.js";
import { answerOtaOffers, attack, revokeAndTime } from "./behaviours.js";
import { errorCodeOf } from "./stats.js";
import { sleep, type Fleet, type SimulatedDevice } from "./fleet.js";
import type { ServerControl } from "./scenario.js";

/** The numbers `moat demo` reports, also what its test checks. */
export interface DemoFacts {
  enrolled: number;
  connected: number;
  enrollSeconds: number;
  telemetry: { sent: number; received: number; p50: number | null; p99: number | null };
  e2e: { sealed: number; opened: number; plaintextSeenByBroker: boolean; replayRefused: string | null };
  compromise: { attackerId: string; denied: number; revocationToDisconnectMs: number | null; stopCode: string | null; honestDevicesOk: boolean };
  ota: { campaignId: string; status: string; booted: number; stages: number[] } | null;
}


/**
 * The narrated walk of `moat demo`: a small fleet enrolls, publishes over mTLS, sends end-to-end
 * encrypted payloads, suffers a compromised device that is denied, revoked and cut off, and takes an
 * OTA rollout. `tell` receives the narration in plain words with the numbers.
 */
export async function runDemo(fleet: Fleet, control: ServerControl, tell: (line: string) => void, options: { telemetryMs: number }): Promise<DemoFacts> {
  const startedAt = Date.now();
  tell(`1. Enrollment: ${fleet.devices.length} devices are registered through the API; each generates its own P-256 key (it never leaves the device)`);
  tell(`   and enrolls over EST (RFC 7030) with a one-time token…`);
  await fleet.start();
  const enrollSeconds = (Date.now() - startedAt) / 1000;
  const sample = fleet.devices.find((d) => d.device)?.device?.certificate;
  tell(`   ${fleet.stats.enrolled} certificates issued and ${fleet.stats.connected} devices connected over mutual TLS in ${enrollSeconds.toFixed(1)} s` + (sample ? ` (e.g. serial ${sample.serial}, valid until ${sample.notAfter.toISOString().slice(0, 16)}Z)` : ""));

  tell(``);
  tell(`2. Telemetry over mTLS: every device publishes once a second at QoS 1 on devices/<id>/telemetry/…; the broker checks each topic against the device's role`);
  fleet.startTelemetry(1);
  await sleep(options.telemetryMs);
  fleet.stopTelemetry();
  await fleet.drain();
  const stats = fleet.stats;
  const telemetry = { sent: stats.sent, received: stats.received, p50: stats.latency.percentile(50), p99: stats.latency.percentile(99) };
  tell(`   ${telemetry.sent} messages acknowledged, ${telemetry.received} delivered to a subscriber; latency p50 ${telemetry.p50 ?? "-"} ms, p99 ${telemetry.p99 ?? "-"} ms`);

  tell(``);
  const e2e = await encryptedPayloads(fleet, fleet.devices.find((d) => d.connected)!, tell);

  tell(``);
  const compromise = await compromisedDevice(fleet, tell);

  tell(``);
  const ota = control.ota ? await rollout(fleet, control, tell) : null;
  return { enrolled: fleet.stats.enrolled, connected: fleet.stats.connected, enrollSeconds, telemetry, e2e, compromise, ota };
}

async function encryptedPayloads(fleet: Fleet, device: SimulatedDevice, tell: (line: string) => void): Promise<DemoFacts["e2e"]> {
  tell(`3. Encrypted payloads: ${device.id} seals its readings as COSE_Encrypt0 (RFC 9052, AES-256-GCM, bound to the topic, numbered against replay)`);
  const key = randomBytes(32);
  const sealer = new PayloadSealer(new Keyring().add("demo-1", key), Date.now() * 1000);
  const opener = new PayloadOpener(new Keyring().add("demo-1", key));
  const topic = fleet.telemetryTopic(device.id);
  const secret = `secret-reading-${randomBytes(4).toString("hex")}`;
  const relayed: Buffer[] = [];
  const watch = (t: string, payload: Buffer) => {
    if (t === topic && payload[0] !== 0x7b) relayed.push(payload);
  };
  fleet.collected.add(watch);
  const count = 5;
  for (let i = 0; i < count; i++) await device.device!.publish(topic, sealer.seal(topic, Buffer.from(JSON.stringify({ reading: secret, i }))), { qos: 1 });
  await fleet.waitFor(() => relayed.length >= count, 10_000);
  fleet.collected.delete(watch);
  const plaintextSeenByBroker = relayed.some((m) => m.includes(Buffer.from(secret)));
  let opened = 0;
  for (const message of relayed) {
    try {
      if (opener.open(topic, message).plaintext.includes(Buffer.from(secret))) opened += 1;
    } catch {
      // Counted as not opened.
    }
  }
  let replayRefused: string | null = null;
  if (relayed[0])
    try {
      opener.open(topic, relayed[0]);
    } catch (error) {
      replayRefused = errorCodeOf(error);
    }
  tell(`   the broker relayed ${relayed.length} messages of ${relayed[0]?.length ?? 0} bytes it cannot read (plaintext visible to it: ${plaintextSeenByBroker ? "YES" : "no"});`);
  tell(`   the backend holding the key opened ${opened}; a replayed copy was refused${replayRefused ? ` (${replayRefused})` : ": NOT refused"}`);
  return { sealed: count, opened, plaintextSeenByBroker, replayRefused };
}

async function compromisedDevice(fleet: Fleet, tell: (line: string) => void): Promise<DemoFacts["compromise"]> {
  const live = fleet.devices.filter((d) => d.connected);
  const attacker = live[live.length - 1]!;
  const honest = live.filter((d) => d !== attacker);
  const api = fleet.options.api;
  tell(`4. A compromised device: ${attacker.id} subscribes to '#' and publishes forged readings on two other devices' topics`);
  fleet.startTelemetry(1, honest);
  const { denials: denied, attempted } = await attack(fleet, attacker, honest);
  tell(`   the broker refused ${denied === attempted ? `all ${denied}` : `only ${denied} of ${attempted}`} attempts (SUBACK 0x80 for the subscriptions; the publishes dropped) and wrote each to the audit log as acl.denied;`);
  tell(`   forged messages delivered to anyone: ${fleet.forgedDelivered}`);
  tell(`   the operator revokes its certificates (POST /v1/devices/${attacker.id}/certificates/revoke)…`);
  const { revokedAt, revocationToDisconnectMs, stopCode } = await revokeAndTime(fleet, attacker);
  // Decommissioned, it takes no part in what follows (the OTA rollout counts active devices only).
  await api.setStatus(attacker.id, "decommissioned", "compromised (moat demo)");
  await fleet.waitFor(() => honest.every((d) => d.lastReceivedAt > revokedAt), 10_000);
  fleet.stopTelemetry();
  const honestDevicesOk = honest.every((d) => d.connected && d.lastReceivedAt > revokedAt) && fleet.forgedDelivered === 0;
  tell(`   its live session was cut ${revocationToDisconnectMs ?? "?"} ms after the revocation; its SDK stopped retrying with ${stopCode ?? "no code (still retrying!)"}`);
  tell(`   the other ${honest.length} devices kept publishing throughout: ${honestDevicesOk ? "yes" : "NO"}`);
  return { attackerId: attacker.id, denied, revocationToDisconnectMs, stopCode, honestDevicesOk };
}

async function rollout(fleet: Fleet, control: ServerControl, tell: (line: string) => void): Promise<DemoFacts["ota"]> {
  const operator = control.ota!;
  const live = fleet.devices.filter((d) => d.connected);
  tell(`5. OTA rollout: a signed firmware image goes to group ${fleet.group} in stages of 25%, 50%, 100% (pausing above 20% failures);`);
  tell(`   each device hears its offer on devices/<id>/ota and reports downloading … booted on devices/<id>/status`);
  for (const d of live) await answerOtaOffers(fleet, d);
  const started = Date.now();
  const id = await operator.release(fleet.group, "25,50,100", "20");
  let view = await operator.status(id);
  let lastStage = -1;
  const until = Date.now() + 60_000;
  while (view.status === "running" && Date.now() < until) {
    if (view.stage !== lastStage) {
      lastStage = view.stage;
      tell(`   stage ${view.stage + 1} opened: ${view.devices.filter((d) => d.stage <= view.stage).length} of ${view.devices.length} devices offered the update`);
    }
    await sleep(100);
    view = await operator.status(id);
  }
  const booted = view.counts.booted ?? 0;
  tell(`   campaign ${id} ${view.status} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${booted} devices booted the new image, ${(view.counts.failed ?? 0) + (view.counts["rolled-back"] ?? 0)} failed`);
  return { campaignId: id, status: view.status, booted, stages: view.stages };
}
