import { answerOtaOffers } from "../behaviours.js";
import { sleep } from "../fleet.js";
import type { Scenario, ScenarioContext } from "../scenario.js";

const STAGES = "25,50,100";
const MAX_FAILURE_RATE = "10";

/**
 * A staged rollout (25%, 50%, 100%, pause above 10% failures) to the run's group. The first stage
 * succeeds; in the second, half of the devices report a failure, so the campaign pauses itself at its
 * threshold and the last stage never opens. One second-stage device is switched off before its stage
 * opens and comes back afterwards: it gets its offer when it reconnects. Devices answer offers as a
 * device's OTA client would (`downloading` … `booted`, or `failed:<reason>`) without downloading an
 * image: the rollout's control loop is what is simulated here (the OTA client itself is tested in
 * test/firmware-ota-*.test.ts).
 */
export const ota: Scenario = {
  name: "ota",
  description: "staged OTA rollout: a share of devices fails and the campaign stops at its threshold; an offline device gets its offer on reconnect",
  minDevices: 8,
  needs: ["ota"],
  async run(ctx) {
    const { fleet, control, note } = ctx;
    const operator = control.ota!;
    const live = fleet.devices.filter((d) => d.device && d.connected);
    const offers = new Map<string, number>();
    const failing = new Set<string>();
    let campaignId = "";
    // Stage-one devices hold their answers until the late device is off, so its stage cannot open before.
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const answers = { fails: (id: string) => failing.has(id), ready: gate, offered: (id: string) => void offers.set(id, Date.now()) };
    for (const d of live) await answerOtaOffers(fleet, d, answers).catch((error: unknown) => fleet.stats.error(error));

    fleet.startTelemetry(ctx.rate);
    note(`releasing a signed image to group ${fleet.group} in stages ${STAGES}% (pauses above ${MAX_FAILURE_RATE}% failures)`);
    campaignId = await operator.release(fleet.group, STAGES, MAX_FAILURE_RATE);
    try {
      const released = await operator.status(campaignId);
      const second = released.devices.filter((d) => d.stage === 1).map((d) => fleet.devices.find((x) => x.id === d.deviceId)!);
      const late = second[0]!;
      note(`${late.id} (second stage) is switched off before its stage opens`);
      await fleet.disconnect(late);
      const others = second.slice(1);
      for (const d of others.slice(0, Math.ceil(others.length / 2))) failing.add(d.id);
      openGate();

      // The first stage finishes, the second opens while the late device is off.
      await waitForCampaign(ctx, campaignId, (c) => c.stage >= 1 || c.status !== "running", 60_000);
      note(`${late.id} comes back and subscribes to its OTA topic`);
      const backAt = Date.now();
      await fleet.reconnect(late);
      await answerOtaOffers(fleet, late, answers).catch((error: unknown) => fleet.stats.error(error));
      await fleet.waitFor(() => offers.has(late.id), 15_000);
      const lateOfferMs = offers.has(late.id) ? offers.get(late.id)! - backAt : null;

      // The failures pause the campaign; every opened device (the late one too) gets to answer.
      const final = await waitForCampaign(
        ctx,
        campaignId,
        (c) => c.status !== "running" && c.devices.filter((d) => d.stage <= c.stage).every((d) => !["notified", "downloading", "verified", "installed"].includes(d.status)),
        60_000,
      );
      fleet.stopTelemetry();
      const lost = await fleet.drain();
      note(`campaign ${campaignId}: ${final.status}${final.pauseReason ? ` (${final.pauseReason})` : ""} at stage ${final.stage + 1} of ${final.stages.length}`);
      return {
        campaignId,
        campaignStatus: final.status,
        pauseReason: final.pauseReason,
        stopsAtThreshold: final.status === "paused" && final.pauseReason === "failure-rate" && final.stage < final.stages.length - 1,
        stageReached: final.stages[final.stage] ?? null,
        offered: offers.size,
        booted: final.counts.booted ?? 0,
        failed: (final.counts.failed ?? 0) + (final.counts["rolled-back"] ?? 0),
        neverOffered: final.devices.filter((d) => d.stage > final.stage).length,
        lateDeviceId: late.id,
        lateDeviceOffered: offers.has(late.id),
        lateOfferMs,
        lost,
      };
    } finally {
      // Nothing stays owed to the run's devices once the simulation ends.
      await operator.abort(campaignId).catch(() => undefined);
    }
  },
};

async function waitForCampaign(ctx: ScenarioContext, id: string, done: (c: Awaited<ReturnType<NonNullable<ScenarioContext["control"]["ota"]>["status"]>>) => boolean, maxMs: number) {
  const until = Date.now() + maxMs;
  for (;;) {
    const campaign = await ctx.control.ota!.status(id);
    if (done(campaign) || Date.now() >= until || ctx.fleet.interrupted) return campaign;
    await sleep(100);
  }
}
