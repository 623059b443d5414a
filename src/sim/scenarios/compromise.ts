import { errorCodeOf } from "../stats.js";
import type { Scenario } from "../scenario.js";

/**
 * One device turns hostile: it subscribes to `#` and to another device's commands, and publishes
 * forged telemetry on two other devices' topics. The broker refuses all of it (the audit log is
 * asked how many denials it recorded); the operator then revokes the device's certificates through
 * the API, and the summary gives the time from that call to the device's disconnect, whether the
 * device's SDK stopped retrying, and whether every honest device kept delivering throughout.
 */
export const compromise: Scenario = {
  name: "compromise",
  description: "one device attacks other devices' topics, is denied, revoked and cut off; the rest keep working",
  minDevices: 3,
  needs: [],
  async run({ fleet, rate, durationMs, note }) {
    const [attacker, ...honest] = fleet.devices.filter((d) => d.device && d.connected);
    if (!attacker || honest.length < 2) return { attackerId: null, honestDevicesOk: false };
    const api = fleet.options.api;
    fleet.startTelemetry(rate, honest);
    await fleet.hold(durationMs / 3);

    note(`${attacker.id} turns hostile: subscribes to # and publishes on other devices' topics`);
    let attempted = 0;
    let refusedByClient = 0;
    for (const filter of ["#", `devices/${honest[0]!.id}/commands/#`]) {
      attempted += 1;
      try {
        await attacker.device!.subscribe(filter, () => undefined);
      } catch {
        // The refusal the attack should meet: counted as a denial (below, from the audit log), not as an error.
        refusedByClient += 1;
      }
    }
    for (const victim of honest.slice(0, 2)) {
      attempted += 1;
      await attacker.device!.publish(fleet.telemetryTopic(victim.id), fleet.forgery(), { qos: 1 }).catch((error: unknown) => fleet.stats.error(error));
    }
    // The broker records each refusal as an acl.denied event; count what it recorded (written asynchronously).
    let denials = 0;
    for (let i = 0; i < 100 && denials < attempted; i++) {
      denials = (await api.auditEvents({ type: "acl.denied", subject: attacker.id, limit: 1000 })).length;
      if (denials < attempted) await fleet.hold(100);
    }
    fleet.stats.denied += denials;

    // Revoke while the attacker is connected (a broker may also have dropped it for its denials; its SDK reconnects).
    await fleet.waitFor(() => attacker.connected, 15_000);
    note(`the operator revokes ${attacker.id}'s certificates through the API`);
    // The SDK reports a connection it will not retry as `stopped` alone; either ends the session.
    const disconnected = fleet.nextEvent(attacker, ["disconnected", "stopped"], 15_000);
    const stopped = fleet.nextEvent(attacker, "stopped", 60_000);
    const revokedAt = Date.now();
    const wasConnected = attacker.connected;
    await api.revokeDevice(attacker.id);
    const cut = wasConnected ? await disconnected : null;
    const revocationToDisconnectMs = cut ? cut.at - revokedAt : null;
    if (cut) note(`${attacker.id} was cut off ${revocationToDisconnectMs} ms after the revocation call`);
    const gaveUp = await stopped;
    const attackerStopCode = gaveUp?.event.state === "stopped" ? gaveUp.event.code : attacker.stoppedCode;

    // The honest devices go on; each must be heard after the revocation too.
    await fleet.waitFor(() => honest.every((d) => d.lastReceivedAt > revokedAt), Math.max(durationMs / 3, 5_000));
    fleet.stopTelemetry();
    const lost = await fleet.drain();
    const honestDevicesOk = honest.every((d) => d.connected && d.stoppedCode === null && d.lastReceivedAt > revokedAt) && lost === 0 && fleet.forgedDelivered === 0;
    return {
      attackerId: attacker.id,
      attempted,
      subscribesRefused: refusedByClient,
      forgedDelivered: fleet.forgedDelivered,
      revocationToDisconnectMs,
      attackerStopped: attackerStopCode !== null,
      attackerStopCode: attackerStopCode === null ? null : errorCodeOf({ code: attackerStopCode }),
      honestDevices: honest.length,
      honestDevicesOk,
      lost,
    };
  },
};
