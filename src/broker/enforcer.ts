/**
 * Live enforcement: applies change-feed rows (and the same rows broadcast by other nodes) to the
 * sessions on this node, one row at a time and in order, after the decider has taken the row in
 * (`ChangePipeline`, change-pipeline.ts). Restrictive facts in a row (a revoked serial, a status that may not connect) also
 * act at once on arrival, ahead of the queue; everything else re-reads the device from the source of
 * truth, so a change message can narrow access but never widen it.
 */
import type { Change } from "../ports.js";
import type { Authorizer } from "./authorizer.js";
import { CONNECTABLE_STATUSES, subjectOf } from "./authenticator.js";
import { normalizeSerial } from "./cert-auth.js";
import { publicKeyIdsOf, secretIdsOf } from "./credential-ids.js";
import type { BrokerMetrics } from "./metrics.js";
import type { DeviceDirectory } from "./ports.js";
import type { RevocationView } from "./revocation-view.js";
import type { Session, SessionRegistry } from "./session.js";

export interface EnforcerDeps {
  sessions: SessionRegistry;
  directory: DeviceDirectory;
  revocations: RevocationView;
  authorizer: Authorizer;
  metrics: BrokerMetrics;
  /** Closes the session; `cause` goes into the `device.disconnected` event. */
  close: (session: Session, cause: string) => void;
  /** (Re)arms the timer that ends the session at `session.deadline`. */
  armDeadline: (session: Session) => void;
  /** Reloads the listeners' TLS material after a CA change. */
  reloadTls: () => Promise<void>;
  onError: (err: unknown, change: Change) => void;
  now?: () => number;
}

export class Enforcer {
  private readonly now: () => number;
  /** When each device last changed, to catch changes that raced a CONNECT (pruned after a minute). */
  private readonly deviceChangedAt = new Map<string, number>();
  private globalChangedAt = 0;

  constructor(private readonly deps: EnforcerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * The part of a row that only closes sessions, applied on arrival: it cannot depend on order (a
   * revoked certificate stays revoked; a later reactivation reopens no session), so it does not wait
   * behind earlier rows. Returns the number of sessions closed.
   */
  closeAtOnce(change: Change): number {
    if (change.kind === "cert.revoked") {
      const serial = normalizeSerial(change.data.serial);
      this.deps.revocations.add(serial);
      let closed = 0;
      for (const session of this.deps.sessions.forSerial(serial)) {
        if (session.closeCause !== null) continue;
        this.deps.close(session, "cert_revoked");
        closed += 1;
      }
      return closed;
    }
    if (change.kind === "device.status" && !CONNECTABLE_STATUSES.has(change.data.to)) {
      this.noteChange(change.subject);
      const session = this.deps.sessions.forDevice(change.subject);
      if (!session || session.closeCause !== null) return 0;
      this.deps.close(session, `device_${change.data.to}`);
      return 1;
    }
    return 0;
  }

  /** Applies one row in full. Never throws; failures go to `onError`. */
  async apply(change: Change): Promise<void> {
    try {
      this.observe(change, this.closeAtOnce(change) + (await this.applyKind(change)));
    } catch (err) {
      this.deps.onError(err, change);
    }
  }

  /** Records how long the row took from commit to acting on a session. */
  observe(change: Change, affected: number): void {
    if (affected === 0) return;
    const written = Date.parse(change.createdAt);
    if (Number.isFinite(written)) this.deps.metrics.enforcementLatency.observe(Math.max(0, this.now() - written) / 1000);
  }

  private async applyKind(change: Change): Promise<number> {
    switch (change.kind) {
      case "cert.revoked":
        // Sessions on the serial are closed; the device's other sessions are checked against its record.
        return this.revalidate(change.data.deviceId);
      case "device.status":
      case "device.updated":
        // Status, role, group and attributes are read again, so the session decides with what the registry says now.
        return this.revalidate(change.subject);
      case "credential.changed":
      case "cert.issued":
        return this.revalidate(change.data.deviceId);
      case "role.assignment": {
        const { kind, target } = change.data;
        if (kind === "device") return this.revalidate(target);
        if (kind === "group") return this.recheck((session) => session.subject.group === target);
        return 0;
      }
      case "policy.changed":
        this.noteChange(null);
        return this.recheck(() => true);
      case "ca.changed":
        await this.deps.reloadTls();
        return 0;
      default:
        return 0;
    }
  }

  /** True when the device (or the policy as a whole) changed at or after `since` (epoch ms). */
  changedSince(deviceId: string, since: number): boolean {
    return this.globalChangedAt >= since || (this.deviceChangedAt.get(deviceId) ?? 0) >= since;
  }

  private noteChange(deviceId: string | null): void {
    const now = this.now();
    if (deviceId === null) {
      this.globalChangedAt = now;
      return;
    }
    this.deviceChangedAt.delete(deviceId);
    this.deviceChangedAt.set(deviceId, now);
    // Insertion order is change order: drop entries older than a CONNECT can take.
    for (const [id, at] of this.deviceChangedAt) {
      if (at > now - 60_000) break;
      this.deviceChangedAt.delete(id);
    }
  }

  /** Re-reads the device and applies its current status, credentials and attributes to its session. */
  async revalidate(deviceId: string): Promise<number> {
    this.noteChange(deviceId);
    const session = this.deps.sessions.forDevice(deviceId);
    if (!session) return 0;
    const device = await this.deps.directory.get(deviceId);
    if (session.closeCause !== null || !session.registered) return 0;
    if (!device) {
      this.deps.close(session, "device_deleted");
      return 1;
    }
    if (!CONNECTABLE_STATUSES.has(device.status)) {
      this.deps.close(session, `device_${device.status}`);
      return 1;
    }
    const now = this.now();
    if (session.certSerial !== null) {
      if (this.deps.revocations.isRevoked(session.certSerial)) {
        this.deps.close(session, "cert_revoked");
        return 1;
      }
      if (!device.certSerials.includes(session.certSerial)) {
        this.deps.close(session, "cert_not_current");
        return 1;
      }
    } else if (session.method === "jwt-key") {
      if (!publicKeyIdsOf(device).has(session.credentialId ?? "")) {
        this.deps.close(session, "credential_removed");
        return 1;
      }
    } else if (session.method === "jwt-secret") {
      const notAfter = secretIdsOf(device, now).get(session.credentialId ?? "");
      if (notAfter === undefined) {
        this.deps.close(session, "secret_rotated");
        return 1;
      }
      if (notAfter < session.deadline) {
        session.deadline = notAfter;
        this.deps.armDeadline(session);
      }
    }
    const before = session.subject;
    session.status = device.status;
    session.subject = subjectOf(device, before.certCn ?? null);
    const removed = this.deps.authorizer.pruneSubscriptions(session);
    return removed.length > 0 || before.status !== device.status ? 1 : 0;
  }

  /** Re-checks the subscriptions of the matching sessions against the current policy; returns how many lost one. */
  private recheck(matches: (session: Session) => boolean): number {
    let affected = 0;
    for (const session of this.deps.sessions.all()) {
      if (session.closeCause !== null || !matches(session)) continue;
      if (this.deps.authorizer.pruneSubscriptions(session).length > 0) affected += 1;
    }
    return affected;
  }
}
