import { attack, revokeAndTime } from "../behaviours.js";
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
    fleet.startTelemetry(rate, honest);
    await fleet.hold(durationMs / 3);

    note(`${attacker.id} turns hostile: subscribes to # and publishes on other devices' topics`);
    const attempt = await attack(fleet, attacker, honest);
    note(`the operator revokes ${attacker.id}'s certificates through the API`);
    const { revokedAt, revocationToDisconnectMs, stopCode: attackerStopCode } = await revokeAndTime(fleet, attacker);
    if (revocationToDisconnectMs !== null) note(`${attacker.id} was cut off ${revocationToDisconnectMs} ms after the revocation call`);

    // The honest devices go on; each must be heard after the revocation too.
    await fleet.waitFor(() => honest.every((d) => d.lastReceivedAt > revokedAt), Math.max(durationMs / 3, 5_000));
    fleet.stopTelemetry();
    const lost = await fleet.drain();
    const honestDevicesOk = honest.every((d) => d.connected && d.stoppedCode === null && d.lastReceivedAt > revokedAt) && lost === 0 && fleet.forgedDelivered === 0;
    return {
      attackerId: attacker.id,
      attempted: attempt.attempted,
      subscribesRefused: attempt.subscribesRefused,
      forgedDelivered: fleet.forgedDelivered,
      revocationToDisconnectMs,
      attackerStopped: attackerStopCode !== null,
      attackerStopCode,
      honestDevices: honest.length,
      honestDevicesOk,
      lost,
    };
  },
};
