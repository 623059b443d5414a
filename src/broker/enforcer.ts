/**
 * Live enforcement: applies change-feed entries (and the same entries broadcast by other nodes) to the
 * sessions on this node. Restrictive facts in a change (a revoked serial, a status that may not
 * connect) act at once; everything else re-reads the device from the source of truth, so a change
 * message can narrow access but never widen it.
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

/** Delay before checking all sessions a second time after a policy change: the policy engine follows the same feed. */
const POLICY_RECHECK_MS = 250;
const SEEN_LIMIT = 10_000;

export class Enforcer {
  private readonly seen = new Set<number>();
  private readonly now: () => number;
  private recheckTimer: NodeJS.Timeout | null = null;
  /** When each device last changed, to catch changes that raced a CONNECT (pruned after a minute). */
  private readonly deviceChangedAt = new Map<string, number>();
  private globalChangedAt = 0;

  constructor(private readonly deps: EnforcerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Marks a change as seen; false when this node has already applied it (from the feed or a broadcast). */
  firstSighting(change: Change): boolean {
    if (this.seen.has(change.seq)) return false;
    this.seen.add(change.seq);
    if (this.seen.size > SEEN_LIMIT) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return true;
  }

  /** Applies one change. Never throws; failures go to `onError`. */
  async apply(change: Change): Promise<void> {
    try {
      const affected = await this.applyKind(change);
      if (affected > 0) {
        const written = Date.parse(change.createdAt);
        if (Number.isFinite(written)) this.deps.metrics.enforcementLatency.observe(Math.max(0, this.now() - written) / 1000);
      }
    } catch (err) {
      this.deps.onError(err, change);
    }
  }

  private async applyKind(change: Change): Promise<number> {
    switch (change.kind) {
      case "cert.revoked": {
        const serial = normalizeSerial(change.data.serial);
        this.deps.revocations.add(serial);
        let affected = 0;
        for (const session of this.deps.sessions.forSerial(serial)) {
          this.deps.close(session, "cert_revoked");
          affected += 1;
        }
        return affected + (await this.revalidate(change.data.deviceId));
      }
      case "device.status": {
        const deviceId = change.subject;
        const status = change.data.to;
        const session = this.deps.sessions.forDevice(deviceId);
        this.noteChange(deviceId);
        if (session && !CONNECTABLE_STATUSES.has(status)) {
          this.deps.close(session, `device_${status}`);
          return 1;
        }
        return this.revalidate(deviceId);
      }
      case "device.updated":
        // The role may have changed: the policy follows the same feed, so look again shortly.
        this.scheduleRecheck();
        return this.revalidate(change.subject);
      case "credential.changed":
      case "cert.issued":
        return this.revalidate(change.data.deviceId);
      case "role.assignment": {
        const { kind, target } = change.data;
        if (kind === "device") return this.revalidate(target);
        if (kind === "token") return 0;
        return this.recheckAll();
      }
      case "policy.changed":
        return this.recheckAll();
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

  /** Re-checks every session's subscriptions now and once more shortly after (see POLICY_RECHECK_MS). */
  recheckAll(): number {
    this.noteChange(null);
    let affected = 0;
    for (const session of this.deps.sessions.all()) if (this.deps.authorizer.pruneSubscriptions(session).length > 0) affected += 1;
    this.scheduleRecheck();
    return affected;
  }

  private scheduleRecheck(): void {
    if (!this.recheckTimer) {
      this.recheckTimer = setTimeout(() => {
        this.recheckTimer = null;
        for (const session of this.deps.sessions.all()) this.deps.authorizer.pruneSubscriptions(session);
      }, POLICY_RECHECK_MS);
      this.recheckTimer.unref();
    }
  }

  stop(): void {
    if (this.recheckTimer) clearTimeout(this.recheckTimer);
    this.recheckTimer = null;
  }
}
