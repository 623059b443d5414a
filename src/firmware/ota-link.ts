import { isMoatError } from "../errors.js";
import type { ChangeFeed } from "../ports.js";
import { UNDELIVERED, type CampaignService } from "./campaign-service.js";
import { mqttOtaNotifier, otaTopic, parseFirmwareInventoryMessage, parseOtaStatusMessage, statusTopic } from "./ota-messages.js";

/** What OTA campaigns need from a running data plane (the MQTT broker satisfies it). */
export interface OtaChannel {
  publish(topic: string, payload: Buffer, options: { qos: 1 }): Promise<void>;
  /** Publishes by authenticated devices that passed authorization; returns the unsubscribe function. */
  onDeviceMessage(listener: (message: { deviceId: string; topic: string; payload: Buffer }) => void): () => void;
  /** Calls `listener(deviceId)` once a device's subscription covers `topicOf(deviceId)`; returns the unsubscribe function. */
  onDeviceSubscribedTo(topicOf: (deviceId: string) => string, listener: (deviceId: string) => void): () => void;
}

/** Where the link reports what it drops or cannot do (the server's logger). */
export interface OtaLinkLog {
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/**
 * Where the link records what a device runs (the identity domain's firmware inventory, wired by the
 * composition root): after an OTA boot (the campaign's release) and from `firmware.inventory` reports.
 */
export interface FirmwareInventorySink {
  report(deviceId: string, report: { version: unknown; securityVersion: unknown }, source: "ota" | "sdk"): Promise<unknown>;
}

/**
 * Connects campaigns to a data plane: offers go out on `devices/{id}/ota`, reports come back on
 * `devices/{id}/status` (docs/firmware.md), and offers decided by another process arrive through the
 * change feed. Returns the function that disconnects them again.
 */
export function linkOtaCampaigns(
  campaigns: CampaignService,
  channel: OtaChannel,
  feed: Pick<ChangeFeed, "subscribe">,
  log: OtaLinkLog,
  inventory?: FirmwareInventorySink,
): () => void {
  const notifier = mqttOtaNotifier((topic, payload) => channel.publish(topic, payload, { qos: 1 }));
  campaigns.setNotifier(notifier);
  // One promise chain per device: its reports are applied in the order the data plane accepted them,
  // so `installed` can never overtake the `downloading` sent before it.
  const chains = new Map<string, Promise<void>>();
  const stopIntake = channel.onDeviceMessage(({ deviceId, topic, payload }) => {
    // The device is the authenticated one, never read from the topic.
    if (topic !== statusTopic(deviceId)) return;
    const reported = inventory ? parseFirmwareInventoryMessage(payload) : undefined;
    if (reported && inventory) {
      inventory.report(deviceId, reported, "sdk").catch((error: unknown) => log.warn({ deviceId, code: isMoatError(error) ? error.code : undefined }, "firmware inventory report refused"));
      return;
    }
    let report: ReturnType<typeof parseOtaStatusMessage>;
    try {
      report = parseOtaStatusMessage(payload);
    } catch (error) {
      log.warn({ deviceId, code: isMoatError(error) ? error.code : undefined }, "OTA: malformed status report ignored");
      return;
    }
    if (!report) return;
    const { campaignId, status } = report;
    const next = (chains.get(deviceId) ?? Promise.resolve())
      .then(() => campaigns.report(campaignId, deviceId, status))
      .then(
        // A device that booted the campaign's image runs its release: that is its inventory now.
        (campaign) => (status === "booted" && inventory ? inventory.report(deviceId, { version: campaign.release.version, securityVersion: campaign.release.securityVersion }, "ota") : undefined),
      )
      .then(
        () => undefined,
        (error: unknown) => log.warn({ deviceId, campaignId, status, code: isMoatError(error) ? error.code : undefined, err: error }, "OTA: status report refused"),
      );
    chains.set(deviceId, next);
    void next.then(() => {
      if (chains.get(deviceId) === next) chains.delete(deviceId);
    });
  });
  // A device that was offline when its stage opened missed the offer: QoS 1 reaches only a session that
  // exists. It gets the offer when it is back, at the moment it subscribes to its OTA topic again (every
  // clean-session reconnect does): the first moment a publish can reach it, where the CONNECT alone
  // would race its SUBSCRIBE. Devices subscribing while a batch is looked up form the next batch, so a
  // fleet reconnecting at once costs a few reads of the campaigns, not one per device.
  let stopped = false;
  let waiting = new Set<string>();
  let lookingUp = false;
  const reofferOwed = (): void => {
    if (lookingUp || stopped || waiting.size === 0) return;
    lookingUp = true;
    const batch = waiting;
    waiting = new Set();
    campaigns
      .offersOwedTo(batch)
      .then((owed) => (stopped ? undefined : Promise.allSettled(owed.map((o) => notifier.notify(o.deviceId, o.message)))))
      .catch((error: unknown) => log.error({ err: error, devices: batch.size }, "OTA: could not re-send offers to reconnected devices"))
      .finally(() => {
        lookingUp = false;
        reofferOwed();
      });
  };
  const stopReoffer = channel.onDeviceSubscribedTo(otaTopic, (deviceId) => {
    waiting.add(deviceId);
    reofferOwed();
  });
  // Offers owed from before this start (a campaign released while no data plane ran) go out again; QoS 1 is at-least-once anyway.
  void (async () => {
    for (const state of ["running", "paused"])
      for (const campaign of await campaigns.list({ status: state, limit: 1000 }))
        for (const owed of await campaigns.pendingNotifications(campaign.id)) await notifier.notify(owed.deviceId, owed.message);
  })().catch((error: unknown) => log.error({ err: error }, "OTA: could not re-send pending offers"));
  // Offers and aborts decided by another process (`moat ota release|resume|abort` on the same database).
  const stopFeed = feed.subscribe((change) => {
    campaigns.deliverFromFeed(change).catch((error: unknown) => log.error({ err: error, campaignId: change.subject }, "OTA: could not deliver a campaign change"));
  });
  return () => {
    stopped = true;
    stopReoffer();
    stopIntake();
    stopFeed();
    campaigns.setNotifier(UNDELIVERED);
  };
}
