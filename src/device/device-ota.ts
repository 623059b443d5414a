// Over-the-air updates from the device object: an OtaClient (TUF + the secure-boot verifier) wired to
// the device's server and broker. Offers arrive on devices/<id>/ota (`ota.update`, `ota.abort`);
// progress goes to devices/<id>/status as `ota.status` reports, which the campaign counts
// (docs/firmware.md). The firmware verifier is here too, for images that arrive by other means.
import { verifyFirmware } from "../firmware/verify.js";
import { MoatError } from "../errors.js";
import { OtaClient, type OtaClientOptions, type OtaOutcome } from "./ota-client.js";

export interface DeviceOtaTransport {
  readonly deviceId: string;
  /** The device's server (https://host:port); the TUF repository is at <server>/tuf/. */
  readonly server: string;
  /** The trust anchor, for the repository's HTTPS certificate. */
  readonly ca: string;
  publish(topic: string, payload: Uint8Array | string, options: { qos?: 0 | 1 }): Promise<void>;
  subscribe(filter: string, handler: (topic: string, payload: Buffer) => void, options: { qos?: 0 | 1 }): Promise<void>;
}

/** OtaClientOptions without what the device object supplies (repository URL, TLS trust, status reports). */
export type DeviceOtaOptions = Omit<OtaClientOptions, "repositoryUrl" | "onStatus" | "tls"> & Partial<Pick<OtaClientOptions, "repositoryUrl" | "tls">>;

const MAX_OFFER_BYTES = 16 * 1024;

export class DeviceOta {
  /** The secure-boot check (also `moat/firmware/verify`). */
  readonly verifyFirmware = verifyFirmware;

  constructor(private readonly transport: DeviceOtaTransport) {}

  get offerTopic(): string {
    return `devices/${this.transport.deviceId}/ota`;
  }

  get statusTopic(): string {
    return `devices/${this.transport.deviceId}/status`;
  }

  /** An OtaClient on the device's server whose status reports go to the device's status topic. */
  client(options: DeviceOtaOptions): OtaClient {
    return new OtaClient({
      repositoryUrl: `${this.transport.server}/tuf/`,
      tls: { ca: this.transport.ca },
      ...options,
      onStatus: (report) => this.report(report.campaignId, report.status),
    });
  }

  /**
   * Subscribes to update offers and runs each with `client`, one at a time. Resolves once subscribed;
   * `onOutcome` hears how each update ended (an update failure is reported, never thrown).
   */
  async listen(client: OtaClient, onOutcome?: (outcome: OtaOutcome, campaignId: string | undefined) => void): Promise<void> {
    let queue: Promise<void> = Promise.resolve();
    await this.transport.subscribe(
      this.offerTopic,
      (_topic, payload) => {
        const offer = parseOffer(payload);
        if (!offer) return;
        queue = queue.then(async () => {
          const outcome = await client.update(offer);
          onOutcome?.(outcome, offer.campaignId);
        });
      },
      { qos: 1 },
    );
  }

  /** Tells the server what the device runs (`firmware.inventory` on the status topic). */
  reportInventory(inventory: { version: string; securityVersion: number }): Promise<void> {
    if (typeof inventory.version !== "string" || inventory.version.length === 0 || !Number.isSafeInteger(inventory.securityVersion) || inventory.securityVersion < 0)
      return Promise.reject(new MoatError("DEVICE_OPTION_INVALID", "a firmware inventory needs a version and a non-negative integer securityVersion"));
    return this.transport.publish(this.statusTopic, JSON.stringify({ type: "firmware.inventory", version: inventory.version, securityVersion: inventory.securityVersion }), { qos: 1 });
  }

  private async report(campaignId: string | undefined, status: string): Promise<void> {
    if (campaignId === undefined) return;
    await this.transport.publish(this.statusTopic, JSON.stringify({ type: "ota.status", campaignId, status }), { qos: 1 });
  }
}

/** An `ota.update` offer, or undefined for anything else (an abort, junk: the broker is not trusted with the content). */
function parseOffer(payload: Buffer): { campaignId?: string; imageTarget: string; manifestTarget: string } | undefined {
  if (payload.length > MAX_OFFER_BYTES) return undefined;
  try {
    const message = JSON.parse(payload.toString("utf8")) as Record<string, unknown>;
    if (message.type !== "ota.update" || typeof message.imageTarget !== "string" || typeof message.manifestTarget !== "string") return undefined;
    return { ...(typeof message.campaignId === "string" ? { campaignId: message.campaignId } : {}), imageTarget: message.imageTarget, manifestTarget: message.manifestTarget };
  } catch {
    return undefined;
  }
}
