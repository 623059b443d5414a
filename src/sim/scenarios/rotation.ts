import type { Scenario } from "../scenario.js";

/**
 * Certificates renew while the fleet publishes at QoS 1: with short lifetimes (`pki.certLifetime`,
 * e.g. 2m) the SDK renews by itself at two thirds of the lifetime; with longer ones the scenario asks
 * each device to renew (`renew()`), spread over the middle of the run. The summary counts devices
 * that moved to a new certificate and acknowledged messages that never arrived (`lost`: should be 0).
 */
export const rotation: Scenario = {
  name: "rotation",
  description: "certificates renew under load (automatically when short-lived); no QoS 1 message may be lost",
  minDevices: 1,
  needs: [],
  async run({ fleet, rate, durationMs, note }) {
    const live = fleet.devices.filter((d) => d.device && d.connected);
    const before = new Map(live.map((d) => [d.id, d.device!.certificate.serial]));
    // What is left of the certificates now (notBefore is backdated against clock skew, so it says little).
    // The SDK renews at two thirds of the lifetime (± 5 %): when every certificate runs out within the
    // run, every device renews on its own before the end.
    const leftMs = Math.max(...live.map((d) => d.device!.certificate.notAfter.getTime() - Date.now()));
    const automatic = Number.isFinite(leftMs) && leftMs * 0.75 < durationMs;
    fleet.startTelemetry(rate);
    let explicitFailures = 0;
    if (automatic) {
      note(`certificates run out within ${Math.round(leftMs / 1000)} s: waiting for the devices to renew on their own under load`);
      await fleet.hold(durationMs);
    } else {
      note(`certificates last ${Math.round(leftMs / 60_000)} more minutes (beyond the run): each device renews on request, spread over the run`);
      const start = Date.now();
      await Promise.all(
        live.map(async (d, i) => {
          await fleet.hold(durationMs * (0.2 + (0.6 * i) / Math.max(1, live.length)));
          await d.device!.renew().catch((error: unknown) => {
            explicitFailures += 1;
            fleet.stats.error(error);
          });
        }),
      );
      await fleet.hold(Math.max(0, durationMs - (Date.now() - start)));
    }
    fleet.stopTelemetry();
    const lost = await fleet.drain(10_000);
    const renewed = live.filter((d) => d.device!.certificate.serial !== before.get(d.id)).length;
    return {
      renewal: automatic ? "automatic" : "on request",
      certSecondsLeftAtStart: Number.isFinite(leftMs) ? Math.round(leftMs / 1000) : null,
      renewed,
      renewFailures: explicitFailures,
      lost,
      noMessageLost: lost === 0,
    };
  },
};
