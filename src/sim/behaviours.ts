import type { Fleet, SimulatedDevice } from "./fleet.js";

/** What a hostile device tried, and how much of it the device itself saw refused. */
export interface AttackOutcome {
  attempted: number;
  subscribesRefused: number;
  /** Refusals the broker recorded (acl.denied events about the attacker in the audit log). */
  denials: number;
}

/**
 * A compromised device at work: it subscribes to `#` and to a victim's commands, and publishes forged
 * telemetry on two victims' topics. The broker should refuse all four (SUBACK 0x80; the publishes are
 * acknowledged and dropped below `broker.maxPublishDenials`). The refusals are read back from the
 * audit log, where the broker writes them asynchronously.
 */
export async function attack(fleet: Fleet, attacker: SimulatedDevice, victims: SimulatedDevice[]): Promise<AttackOutcome> {
  let attempted = 0;
  let subscribesRefused = 0;
  for (const filter of ["#", `devices/${victims[0]!.id}/commands/#`]) {
    attempted += 1;
    try {
      await attacker.device!.subscribe(filter, () => undefined);
    } catch {
      // The refusal the attack should meet: a denial, not an error of the run.
      subscribesRefused += 1;
    }
  }
  for (const victim of victims.slice(0, 2)) {
    attempted += 1;
    await attacker.device!.publish(fleet.telemetryTopic(victim.id), fleet.forgery(), { qos: 1 }).catch((error: unknown) => fleet.stats.error(error));
  }
  let denials = 0;
  for (let i = 0; i < 100 && denials < attempted && !fleet.interrupted; i++) {
    denials = (await fleet.options.api.auditEvents({ type: "acl.denied", subject: attacker.id, limit: 1000 })).length;
    if (denials < attempted) await fleet.hold(100);
  }
  fleet.stats.denied += denials;
  return { attempted, subscribesRefused, denials };
}

/** What revoking a connected device through the API did to it. */
export interface RevocationOutcome {
  revokedAt: number;
  /** From the revocation call to the device's SDK reporting its connection gone (null: it was not connected, or never cut). */
  revocationToDisconnectMs: number | null;
  /** The code the SDK stopped retrying with (null: it did not stop). */
  stopCode: string | null;
}

/**
 * The operator's answer: revoke every certificate of the device through the API, while it is connected
 * (a broker may have dropped it for its denials first; its SDK reconnects), and time the cut.
 */
export async function revokeAndTime(fleet: Fleet, device: SimulatedDevice): Promise<RevocationOutcome> {
  await fleet.waitFor(() => device.connected, 15_000);
  // The SDK reports a connection it will not retry as `stopped` alone; either ends the session.
  const cut = fleet.nextEvent(device, ["disconnected", "stopped"], 15_000);
  const stopped = fleet.nextEvent(device, "stopped", 60_000);
  const wasConnected = device.connected;
  const revokedAt = Date.now();
  await fleet.options.api.revokeDevice(device.id);
  const gone = wasConnected ? await cut : null;
  const end = await stopped;
  return {
    revokedAt,
    revocationToDisconnectMs: gone ? gone.at - revokedAt : null,
    stopCode: end?.event.state === "stopped" ? end.event.code : device.stoppedCode,
  };
}

/**
 * Makes a device answer OTA offers on `devices/<id>/ota` as an OTA client would, on
 * `devices/<id>/status`: `downloading` … `booted`, or `downloading` then `failed:<reason>` when
 * `fails(deviceId)` says so. No image is downloaded: the campaign's control loop is what is exercised.
 * `ready` holds the answers back until it resolves. `offered(deviceId)` is called on each device's first offer.
 */
export async function answerOtaOffers(
  fleet: Fleet,
  device: SimulatedDevice,
  options: { fails?: (deviceId: string) => boolean; ready?: Promise<void>; offered?: (deviceId: string) => void } = {},
): Promise<void> {
  const answered = new Set<string>();
  await device.device!.subscribe(`devices/${device.id}/ota`, (_topic, payload) => {
    let offer: { type?: unknown; campaignId?: unknown };
    try {
      offer = JSON.parse(payload.toString("utf8")) as typeof offer;
    } catch {
      return;
    }
    const campaignId = offer.campaignId;
    // QoS 1 may deliver an offer twice; a campaign is answered once.
    if (offer.type !== "ota.update" || typeof campaignId !== "string" || answered.has(campaignId)) return;
    answered.add(campaignId);
    options.offered?.(device.id);
    void (async () => {
      await options.ready;
      const steps = options.fails?.(device.id) ? ["downloading", "failed:SIM_INJECTED_FAILURE"] : ["downloading", "verified", "installed", "booted"];
      for (const status of steps)
        await device.device!.publish(`devices/${device.id}/status`, JSON.stringify({ type: "ota.status", campaignId, status }), { qos: 1 }).catch((error: unknown) => fleet.stats.error(error));
    })();
  });
}
