import { randomBytes } from "node:crypto";
import { MoatError, isMoatError } from "../errors.js";
import {
  abortCampaign,
  createCampaign,
  parseFailureRate,
  parseStages,
  pauseCampaign,
  reportDeviceStatus,
  resumeCampaign,
  summarizeCampaign,
  type Campaign,
  type CampaignTransition,
  type OtaNotification,
} from "./campaign.js";
import type { Change } from "../ports.js";
import type { FirmwareKeyService } from "./firmware-key-service.js";
import type { FirmwareStore, FirmwareUnitOfWork, GroupDirectory, OtaNotifier } from "./ports.js";
import type { TufService } from "./tuf-service.js";
import { pageLimit } from "../lib/page.js";

export interface ReleaseInput {
  /** The image file and its signed manifest (file contents). */
  image: string;
  manifest: string;
  group: string;
  stages?: string | number[];
  maxFailureRate?: string | number;
  actor: string;
}

/** An OTA message as `record` writes it into the feed: an update offer or an abort for one campaign. */
function isOtaMessage(message: object): message is OtaNotification["message"] {
  const m = message as { type?: unknown; campaignId?: unknown };
  return (m.type === "ota.update" || m.type === "ota.abort") && typeof m.campaignId === "string";
}

/** A notifier used until the MQTT broker is wired: it delivers nothing, and says so. */
export const UNDELIVERED: OtaNotifier = {
  async notify() {
    // Nothing to do: `pendingNotifications` lets the broker catch up once it is connected.
  },
};

/**
 * OTA campaigns: the pure state machine (campaign.ts) persisted in the store, with every transition
 * written as a security event in the same transaction, and device messages sent after commit.
 * Status intake (`report`) is the method the broker calls for messages on a device's status topic.
 */
export class CampaignService {
  constructor(
    private readonly deps: {
      store: FirmwareStore;
      keys: FirmwareKeyService;
      tuf: TufService;
      groups: GroupDirectory;
      notifier?: OtaNotifier;
      clock?: () => Date;
    },
  ) {}

  private notifier: OtaNotifier | undefined;

  /** Identifies this process's service in the change feed (see `record`). */
  readonly instanceId = randomBytes(8).toString("hex");

  /** Connects the device channel (the broker) once it exists. */
  setNotifier(notifier: OtaNotifier): void {
    this.notifier = notifier;
  }

  /**
   * Releases an image to a group: verifies the manifest against this installation's own roots and
   * the image against it, publishes both as TUF targets, then opens the first stage.
   */
  async release(input: ReleaseInput): Promise<Campaign> {
    const stages = parseStages(typeof input.stages === "string" ? input.stages : (input.stages ?? [5, 25, 100]));
    const maxFailureRate = parseFailureRate(input.maxFailureRate ?? 5);
    let verified: Awaited<ReturnType<FirmwareKeyService["verify"]>>;
    try {
      verified = await this.deps.keys.verify(input.image, input.manifest);
    } catch (error) {
      if (isMoatError(error)) {
        const code = error.code;
        await this.deps.store.transact((uow) =>
          uow.events.append({ type: "firmware.rejected", severity: "medium", actor: input.actor, subject: input.group, data: { code, reason: error.message, stage: "release" } }),
        );
      }
      throw error;
    }
    // Only active devices take part: pending ones have no credentials yet, suspended ones must not update.
    const devices = (await this.deps.groups.devicesInGroup(input.group)).filter((d) => d.status === "active").map((d) => d.id);
    if (devices.length === 0) throw new MoatError("OTA_GROUP_EMPTY", `group "${input.group}" has no active devices`);
    const targets = await this.deps.tuf.publishRelease(input.image, input.manifest, input.actor);
    const { manifest } = verified;
    const step = createCampaign({
      id: `ota-${randomBytes(6).toString("hex")}`,
      group: input.group,
      deviceIds: devices,
      release: { hardwareId: manifest.hardwareId, version: manifest.version, securityVersion: manifest.securityVersion, ...targets },
      stages,
      maxFailureRate,
      now: this.now(),
    });
    await this.deps.store.transact(async (uow) => {
      await uow.campaigns.insert(step.campaign);
      await this.record(uow, step, input.actor);
    });
    await this.deliver(step.notifications);
    return step.campaign;
  }

  /** Status intake: a device reports `downloading`, `verified`, `installed`, `booted`, `failed:<reason>` or `rolled-back`. */
  async report(campaignId: string, deviceId: string, status: string): Promise<Campaign> {
    return this.apply(campaignId, `device:${deviceId}`, (campaign) => reportDeviceStatus(campaign, deviceId, status, this.now()));
  }

  async pause(id: string, actor: string): Promise<Campaign> {
    return this.apply(id, actor, (campaign) => pauseCampaign(campaign, this.now(), actor));
  }

  async resume(id: string, actor: string): Promise<Campaign> {
    return this.apply(id, actor, (campaign) => resumeCampaign(campaign, this.now(), actor));
  }

  async abort(id: string, actor: string): Promise<Campaign> {
    return this.apply(id, actor, (campaign) => abortCampaign(campaign, this.now(), actor));
  }

  async get(id: string): Promise<Campaign> {
    const campaign = await this.deps.store.campaigns.get(id);
    if (!campaign) throw new MoatError("OTA_CAMPAIGN_NOT_FOUND", `no OTA campaign ${id}`);
    return campaign;
  }

  async list(filter: { status?: string; limit?: number } = {}): Promise<Campaign[]> {
    return this.deps.store.campaigns.list({ ...filter, limit: pageLimit(filter.limit, 100) });
  }

  /** The status view of `moat ota status`. */
  async status(id: string) {
    const campaign = await this.get(id);
    return { ...summarizeCampaign(campaign), campaign };
  }

  /** Update messages owed to devices told but not yet reporting (for re-delivery once the broker is up). */
  async pendingNotifications(id: string): Promise<OtaNotification[]> {
    return owedOffers(await this.get(id), () => true);
  }

  /**
   * The offers owed to these devices by every running or paused campaign: each device its stage told
   * that has not reported since (it may have been offline when the offer went out). One read of the
   * active campaigns serves the whole batch, so a fleet reconnecting at once costs a few reads, not one per device.
   */
  async offersOwedTo(deviceIds: Iterable<string>): Promise<OtaNotification[]> {
    const wanted = new Set(deviceIds);
    if (wanted.size === 0) return [];
    const owed: OtaNotification[] = [];
    for (const status of ["running", "paused"])
      for (const campaign of await this.list({ status, limit: 1000 })) owed.push(...owedOffers(campaign, (deviceId) => wanted.has(deviceId)));
    return owed;
  }

  private async apply(id: string, actor: string, change: (campaign: Campaign) => CampaignTransition): Promise<Campaign> {
    const step = await this.deps.store.transact(async (uow) => {
      const current = await uow.campaigns.get(id, { forUpdate: true });
      if (!current) throw new MoatError("OTA_CAMPAIGN_NOT_FOUND", `no OTA campaign ${id}`);
      const next = change(current);
      if (next.events.length === 0) return next;
      await uow.campaigns.update(next.campaign);
      await this.record(uow, next, actor);
      return next;
    });
    await this.deliver(step.notifications);
    return step.campaign;
  }

  private async record(uow: FirmwareUnitOfWork, step: CampaignTransition, actor: string): Promise<void> {
    for (const event of step.events) await uow.events.append({ type: event.type, severity: event.severity, actor, subject: event.subject, data: event.data });
    // Messages owed to devices also go into the change feed, so a `moat serve` running the broker delivers
    // what a CLI process (release, resume, abort) decided; the origin lets this process skip its own.
    if (step.notifications.length > 0)
      await uow.changes.append({ kind: "ota.notify", subject: step.campaign.id, data: { origin: this.instanceId, notifications: step.notifications } });
  }

  /**
   * Delivers notifications a campaign change in another process wrote to the feed (see `record`).
   * Returns false for changes that are not for this process to deliver.
   */
  async deliverFromFeed(change: Change): Promise<boolean> {
    if (change.kind !== "ota.notify" || change.data.origin === this.instanceId) return false;
    // The feed checked the envelope; the messages are this domain's own, written by `record`.
    const notifications = change.data.notifications.filter((n): n is OtaNotification => isOtaMessage(n.message));
    await this.deliver(notifications);
    return true;
  }

  private async deliver(notifications: OtaNotification[]): Promise<void> {
    const notifier = this.notifier ?? this.deps.notifier ?? UNDELIVERED;
    // One device's unreachable channel must not stop the others; the campaign state is already committed.
    await Promise.allSettled(notifications.map((n) => notifier.notify(n.deviceId, n.message)));
  }

  private now(): Date {
    return (this.deps.clock ?? (() => new Date()))();
  }
}

/** The update offers a campaign still owes: its told devices (`notified`) that `wanted` selects, while it runs or is paused. */
function owedOffers(campaign: Campaign, wanted: (deviceId: string) => boolean): OtaNotification[] {
  if (campaign.status !== "running" && campaign.status !== "paused") return [];
  return campaign.devices
    .filter((d) => d.status === "notified" && d.stage <= campaign.stage && wanted(d.deviceId))
    .map((d) => ({ deviceId: d.deviceId, message: { type: "ota.update", campaignId: campaign.id, ...campaign.release } }));
}
