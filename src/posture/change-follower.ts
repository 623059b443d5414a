/**
 * Keeps the latest posture run current between scheduled runs: a change-feed row about one device
 * (its record, status, certificates or credentials) re-evaluates that device's checks. Rows arriving
 * together are gathered for a moment, so a burst costs one re-evaluation per device.
 */
import type { Change } from "../ports.js";
import type { PostureService } from "./service.js";

/** The device a feed row is about, when it changes what the device-scoped checks see. */
export function deviceOfChange(change: Change): string | null {
  switch (change.kind) {
    case "device.created":
    case "device.updated":
    case "device.status":
      return change.subject;
    case "cert.issued":
    case "cert.revoked":
    case "credential.changed":
      return change.data.deviceId;
    default:
      return null;
  }
}

export class PostureChangeFollower {
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private working: Promise<void> = Promise.resolve();

  constructor(
    private readonly posture: Pick<PostureService, "reevaluateDevice">,
    private readonly onError: (error: unknown) => void,
    private readonly gatherMs = 100,
  ) {}

  take(change: Change): void {
    const device = deviceOfChange(change);
    if (!device) return;
    this.pending.add(device);
    this.timer ??= setTimeout(() => {
      this.timer = null;
      const devices = [...this.pending];
      this.pending.clear();
      this.working = this.working.then(async () => {
        for (const id of devices) await this.posture.reevaluateDevice(id).catch(this.onError);
      });
    }, this.gatherMs);
  }

  /** Settles once everything taken so far is re-evaluated (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.timer || this.pending.size > 0) await new Promise((resolve) => setTimeout(resolve, this.gatherMs));
    await this.working;
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
    await this.working;
  }
}
