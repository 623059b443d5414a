import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Updater, type Fetcher } from "tuf-js";
import { MoatError, isMoatError } from "../errors.js";
import { assertSafeTargetPath, verifyFirmware, type FirmwarePublicKey, type SecureBootResult, type SecurityCounter } from "../firmware/verify.js";
import { AbSlots, type SlotName } from "./ab-slots.js";
import { TufHttpsFetcher, type TufFetcherOptions } from "./tuf-https-fetcher.js";

/** The update a device is told about (the `ota.update` message on `devices/{id}/ota`). */
export interface OtaUpdateRequest {
  campaignId?: string;
  imageTarget: string;
  manifestTarget: string;
}

/** A status report as the campaign expects it: `downloading`, `verified`, `installed`, `booted`, `failed:<reason>`, `rolled-back`. */
export interface OtaStatusReport {
  campaignId?: string;
  status: string;
}

export interface OtaClientOptions {
  hardwareId: string;
  /** Base URL of Moat's TUF repository, e.g. `https://moat.example:8443/tuf/`. */
  repositoryUrl: string;
  /** Where trusted TUF metadata lives; must hold the pinned `root.json` before the first update. */
  metadataDir: string;
  /** Folder with the A/B slots (`a/`, `b/`, `state.json`). */
  slotsDir: string;
  /** Root firmware keys pinned on the device. */
  trustedRoots: readonly FirmwarePublicKey[];
  /** The persisted anti-rollback counter. */
  counter: SecurityCounter;
  /**
   * The newest root-signed revocation list the device holds (e.g. from `GET /v1/firmware/revocations`)
   * and the highest list version it has accepted before; manifests by revoked keys are refused.
   */
  revocations?: () => Promise<{ list: unknown; minVersion?: number } | undefined>;
  /** TLS trust (Moat's CA) and optional client certificate for the repository. */
  tls?: TufFetcherOptions;
  /**
   * How repository files are fetched; default HTTPS with `tls`. Another transport (a gateway relaying the
   * repository over a serial link) plugs in here; TUF still verifies everything it brings.
   */
  fetcher?: Fetcher;
  /** Called with every status change, e.g. to publish it on the device's status topic. */
  onStatus?: (report: OtaStatusReport) => void | Promise<void>;
  /** Runs after the new image "boots"; false rolls back. Defaults to healthy. */
  healthCheck?: (slotDir: string, boot: SecureBootResult) => Promise<boolean>;
}

export interface OtaOutcome {
  status: "booted" | "rolled-back" | "failed";
  reason?: string;
  slot?: SlotName;
  version?: string;
}

/**
 * The device-side updater. TUF (tuf-js) decides which bytes are current and authentic against
 * freeze, rollback and mix-and-match attacks; the secure-boot verifier then checks the vendor's
 * signed manifest against the pinned root keys, the hardware id and the security counter. Only
 * then is the image written into the inactive A/B slot; the active slot is never touched, and the
 * counter moves up only after the new image booted and passed its health check.
 */
export class OtaClient {
  private readonly slots: AbSlots;

  constructor(private readonly options: OtaClientOptions) {
    this.slots = new AbSlots(options.slotsDir);
  }

  /** Fetches, verifies, installs and boots the update; reports every step. Never throws for an update failure. */
  async update(request: OtaUpdateRequest): Promise<OtaOutcome> {
    const report = (status: string) => this.report(request.campaignId, status);
    let installedSlot: SlotName | undefined;
    try {
      const imageTarget = assertSafeTargetPath(request.imageTarget, "image target");
      const manifestTarget = assertSafeTargetPath(request.manifestTarget, "manifest target");
      await report("downloading");
      const state = await this.slots.read();
      if (state.pending) throw new MoatError("OTA_INSTALL_FAILED", `slot ${state.pending} still waits for its first boot`);
      const slot = AbSlots.inactive(state);
      const slotDir = this.slots.slotDir(slot);
      await rm(slotDir, { recursive: true, force: true });
      await mkdir(slotDir, { recursive: true });
      const staged = join(slotDir, "image.bin.download");
      const stagedManifest = join(slotDir, "manifest.json.download");
      const imageInfo = await this.fetchTarget(imageTarget, staged, manifestTarget, stagedManifest);

      const manifestBytes = await readFile(stagedManifest);
      const boot = await verifyFirmware(staged, manifestBytes, await this.policy());
      // Mix-and-match defence: TUF's record of the image must describe the same build as the manifest.
      const custom = imageInfo.custom;
      const manifest = boot.manifest;
      if (manifest.image.path !== imageTarget || imageInfo.hashes.sha256 !== manifest.image.sha256)
        throw new MoatError("FIRMWARE_DIGEST_MISMATCH", "the TUF target and the manifest describe different images");
      if (custom.hardwareId !== manifest.hardwareId || custom.version !== manifest.version || custom.securityVersion !== manifest.securityVersion)
        throw new MoatError("FIRMWARE_HARDWARE_MISMATCH", "the TUF target's custom fields disagree with the signed manifest");
      await report("verified");

      await rename(staged, join(slotDir, "image.bin"));
      await rename(stagedManifest, join(slotDir, "manifest.json"));
      await this.slots.write({ ...state, pending: slot, slots: { ...state.slots, [slot]: { version: manifest.version, securityVersion: manifest.securityVersion } } });
      installedSlot = slot;
      await report("installed");
      return await this.bootPending(request.campaignId);
    } catch (error) {
      const reason = isMoatError(error) ? error.code : "INTERNAL";
      if (installedSlot) {
        await this.rollBack(installedSlot).catch(() => undefined);
        await report("rolled-back");
        return { status: "rolled-back", reason };
      }
      await report(`failed:${reason}`);
      return { status: "failed", reason };
    }
  }

  /**
   * Boots the pending slot: secure boot re-verifies the installed image (as a bootloader would),
   * the health check runs, then the slot becomes active and the counter moves up; otherwise the
   * pending slot is dropped and the previous image stays active.
   */
  async bootPending(campaignId?: string): Promise<OtaOutcome> {
    const state = await this.slots.read();
    const slot = state.pending;
    if (!slot) throw new MoatError("OTA_SLOT_STATE_INVALID", "no slot is waiting to boot");
    const slotDir = this.slots.slotDir(slot);
    let healthy = false;
    let boot: SecureBootResult | undefined;
    let reason: string | undefined;
    try {
      boot = await verifyFirmware(join(slotDir, "image.bin"), await readFile(join(slotDir, "manifest.json")), await this.policy());
      healthy = this.options.healthCheck ? await this.options.healthCheck(slotDir, boot) : true;
      if (!healthy) reason = "HEALTH_CHECK_FAILED";
    } catch (error) {
      reason = isMoatError(error) ? error.code : "INTERNAL";
    }
    if (!healthy || !boot) {
      await this.rollBack(slot);
      await this.report(campaignId, "rolled-back");
      return { status: "rolled-back", slot: state.active, ...(reason ? { reason } : {}) };
    }
    await this.slots.write({ ...state, active: slot, pending: undefined });
    // Only now, after a successful boot, may the counter move up (a failed boot must stay reversible).
    await this.options.counter.advance(Math.max(boot.manifest.securityVersion, await this.options.counter.read()));
    await this.report(campaignId, "booted");
    return { status: "booted", slot, version: boot.manifest.version };
  }

  /** The running slot and what each slot holds. */
  async slotState() {
    return this.slots.read();
  }

  private async rollBack(slot: SlotName): Promise<void> {
    const state = await this.slots.read();
    const slots = { ...state.slots };
    delete slots[slot];
    await this.slots.write({ active: state.active, slots });
    await rm(this.slots.slotDir(slot), { recursive: true, force: true });
  }

  private async fetchTarget(imageTarget: string, imagePath: string, manifestTarget: string, manifestPath: string) {
    const base = this.options.repositoryUrl.replace(/\/?$/, "/");
    const updater = new Updater({
      metadataDir: this.options.metadataDir,
      metadataBaseUrl: `${base}metadata`,
      targetBaseUrl: `${base}targets`,
      targetDir: join(this.options.slotsDir, "downloads"),
      fetcher: this.options.fetcher ?? new TufHttpsFetcher(this.options.tls),
    });
    try {
      await updater.refresh();
      const image = await updater.getTargetInfo(imageTarget);
      const manifest = await updater.getTargetInfo(manifestTarget);
      if (!image || !manifest) throw new MoatError("TUF_UPDATE_FAILED", `the repository's signed targets do not list ${image ? manifestTarget : imageTarget}`);
      await updater.downloadTarget(manifest, manifestPath);
      await updater.downloadTarget(image, imagePath);
      return image;
    } catch (error) {
      if (isMoatError(error)) throw error;
      throw new MoatError("TUF_UPDATE_FAILED", `TUF update refused: ${(error as Error).message}`, { cause: error, detail: { tufError: (error as Error).name } });
    }
  }

  private async policy() {
    const revocations = await this.options.revocations?.();
    return {
      trustedRoots: this.options.trustedRoots,
      hardwareId: this.options.hardwareId,
      minSecurityVersion: this.options.counter,
      ...(revocations ? { revocations: revocations.list, minRevocationVersion: revocations.minVersion ?? 0 } : {}),
    };
  }

  private async report(campaignId: string | undefined, status: string): Promise<void> {
    try {
      await this.options.onStatus?.({ ...(campaignId ? { campaignId } : {}), status });
    } catch {
      // A status channel that is down must not break an update in progress.
    }
  }
}

/** Writes the pinned TUF root into a fresh metadata folder (first provisioning of a device). */
export async function provisionTufRoot(metadataDir: string, rootJson: Uint8Array): Promise<void> {
  await mkdir(metadataDir, { recursive: true });
  await writeFile(join(metadataDir, "root.json"), rootJson, { mode: 0o644 });
}
