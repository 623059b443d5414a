/**
 * The security view's figures, computed from the newest security events of each kind in the log (at most
 * one page, 1,000, per type, so the cost stays bounded however long the log is): authentication failures
 * and bans per hour over the last 24 hours, the most denied devices and topics, broker limit drops, and the
 * time from each certificate revocation to the disconnection of the revoked device's live session.
 */
import type { SecurityEvent } from "./events.js";
import { FAILURE_SUMMARY_TYPE } from "./failure-aggregator.js";
import { MAX_PAGE_ITEMS } from "../lib/page.js";

export interface SecuritySummary {
  since: string;
  /** Hour starts (ISO), oldest first, with the counts in that hour. */
  hours: { at: string; authFailures: number; bans: number; denials: number; limitDrops: number }[];
  topDeniedDevices: { device: string; count: number }[];
  topDeniedTopics: { topic: string; count: number }[];
  limitDrops: { reason: string; count: number }[];
  /** Revocation-to-disconnect of revoked devices that were connected, newest first. */
  revocations: { device: string; serial: string; revokedAt: string; disconnectedAt: string; latencyMs: number }[];
  /** How many events of each type were read (at most one page each). */
  sampled: Record<string, number>;
}

type Lister = (query: { type: string; limit: number }) => Promise<SecurityEvent[]>;

const HOUR = 3600_000;

function top(counts: Map<string, number>, n: number): [string, number][] {
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, n);
}

export async function securitySummary(list: Lister, now: Date = new Date()): Promise<SecuritySummary> {
  const start = Math.floor(now.getTime() / HOUR) * HOUR - 23 * HOUR;
  const types = ["auth.failed", FAILURE_SUMMARY_TYPE, "auth.banned", "acl.denied", "broker.limit_exceeded", "cert.revoked", "device.disconnected"];
  const pages = await Promise.all(types.map((type) => list({ type, limit: MAX_PAGE_ITEMS })));
  const byType = Object.fromEntries(types.map((t, i) => [t, pages[i]!]));
  const hours = Array.from({ length: 24 }, (_, i) => ({ at: new Date(start + i * HOUR).toISOString(), authFailures: 0, bans: 0, denials: 0, limitDrops: 0 }));
  const bucket = (time: string) => {
    const index = Math.floor((Date.parse(time) - start) / HOUR);
    return index >= 0 && index < 24 ? hours[index] : undefined;
  };
  for (const e of byType["auth.failed"]!) {
    const b = bucket(e.time);
    if (b) b.authFailures++;
  }
  // A summary row stands for `count` failures after the first (which is logged in full).
  for (const e of byType[FAILURE_SUMMARY_TYPE]!) {
    const b = bucket(e.time);
    if (b) b.authFailures += Number(e.data.count ?? 0) || 0;
  }
  for (const e of byType["auth.banned"]!) {
    const b = bucket(e.time);
    if (b) b.bans++;
  }
  const deniedDevices = new Map<string, number>();
  const deniedTopics = new Map<string, number>();
  for (const e of byType["acl.denied"]!) {
    const b = bucket(e.time);
    if (!b) continue;
    b.denials++;
    const device = e.actor.startsWith("device:") ? e.actor.slice("device:".length) : null;
    if (device) deniedDevices.set(device, (deniedDevices.get(device) ?? 0) + 1);
    const topic = typeof e.data.topic === "string" ? e.data.topic : null;
    if (topic) deniedTopics.set(topic, (deniedTopics.get(topic) ?? 0) + 1);
  }
  const drops = new Map<string, number>();
  for (const e of byType["broker.limit_exceeded"]!) {
    const b = bucket(e.time);
    if (!b) continue;
    b.limitDrops++;
    const reason = String(e.data.limit ?? e.data.reason ?? "limit");
    drops.set(reason, (drops.get(reason) ?? 0) + 1);
  }
  // Each revocation pairs with the first later disconnection of that device closed for its certificate.
  const closures = byType["device.disconnected"]!.filter((e) => e.data.reason === "cert_revoked").sort((a, b) => a.seq - b.seq);
  const revocations: SecuritySummary["revocations"] = [];
  for (const revoked of byType["cert.revoked"]!) {
    const device = String(revoked.data.deviceId ?? revoked.subject);
    const closed = closures.find((c) => c.subject === device && c.seq > revoked.seq);
    if (!closed) continue;
    revocations.push({ device, serial: String(revoked.data.serial ?? ""), revokedAt: revoked.time, disconnectedAt: closed.time, latencyMs: Math.max(0, Date.parse(closed.time) - Date.parse(revoked.time)) });
  }
  return {
    since: new Date(start).toISOString(),
    hours,
    topDeniedDevices: top(deniedDevices, 10).map(([device, count]) => ({ device, count })),
    topDeniedTopics: top(deniedTopics, 10).map(([topic, count]) => ({ topic, count })),
    limitDrops: top(drops, 10).map(([reason, count]) => ({ reason, count })),
    revocations: revocations.slice(0, 50),
    sampled: Object.fromEntries(types.map((t) => [t, byType[t]!.length])),
  };
}
