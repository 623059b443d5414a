/**
 * The checks themselves: pure functions over the facts the ports give. A full run streams devices and
 * certificates once into a {@link FleetIndex}; re-evaluating one device reuses that index, so a single
 * change costs a handful of queries, not another pass over the fleet.
 */
import { BlockList, isIP } from "node:net";
import type { LintFinding } from "../policy/index.js";
import { checkDefinition } from "./catalogue.js";
import type { Severity } from "./model.js";
import type { CertificateRow, DeviceRow, GroupPostureSettings, InstallationFacts, PostureDataPort, RegisteredKeyRow, StoredFinding } from "./ports.js";

const DAY_MS = 86_400_000;
const PAGE = 5_000;
/** Takeovers within this window count towards a client-id conflict. */
export const TAKEOVER_WINDOW_MS = DAY_MS;
/** Devices in these states are expected to hold a working credential and to show up. */
const LIVE_STATUSES = new Set(["active", "quarantined"]);

export interface CheckResult {
  status: "passed" | "failed" | "not-applicable";
  reason?: string;
  findings: StoredFinding[];
  /** What the check looked at, for reports (counts, settings). */
  evidence?: Record<string, unknown>;
}

export interface EvaluationContext {
  data: PostureDataPort;
  facts: InstallationFacts;
  now: number;
}

function finding(check: string, key: string, resources: StoredFinding["resources"], evidence: Record<string, unknown>, severity?: Severity): StoredFinding {
  const definition = checkDefinition(check)!;
  return { check, key: `${check}:${key}`, severity: severity ?? definition.severity, resources, evidence, fix: definition.fix };
}

function result(findings: StoredFinding[], evidence?: Record<string, unknown>): CheckResult {
  return { status: findings.length > 0 ? "failed" : "passed", findings, ...(evidence ? { evidence } : {}) };
}

const notApplicable = (reason: string): CheckResult => ({ status: "not-applicable", reason, findings: [] });

/** Who holds each public key, built from a full pass and kept current by re-evaluation. */
export class FleetIndex {
  /** SPKI SHA-256 → device id → the certificate serials or key ids carrying it. */
  readonly keyOwners = new Map<string, Map<string, string[]>>();
  /** Device id → the SPKI hashes it holds now. */
  readonly deviceKeys = new Map<string, Set<string>>();
  /** Issuer serial → unexpired device certificates it signed. */
  readonly activeByIssuer = new Map<string, number>();
  devices = 0;
  certificates = 0;

  addKey(spki: string, deviceId: string, credential: string): void {
    let owners = this.keyOwners.get(spki);
    if (!owners) this.keyOwners.set(spki, (owners = new Map()));
    const held = owners.get(deviceId);
    if (held) held.push(credential);
    else owners.set(deviceId, [credential]);
    let keys = this.deviceKeys.get(deviceId);
    if (!keys) this.deviceKeys.set(deviceId, (keys = new Set()));
    keys.add(spki);
  }

  /** Forgets a device's keys (before its current ones are added again). Returns the hashes it held. */
  dropDevice(deviceId: string): string[] {
    const keys = [...(this.deviceKeys.get(deviceId) ?? [])];
    for (const spki of keys) {
      const owners = this.keyOwners.get(spki);
      owners?.delete(deviceId);
      if (owners && owners.size === 0) this.keyOwners.delete(spki);
    }
    this.deviceKeys.delete(deviceId);
    return keys;
  }
}

/** Per-device findings from one device's rows: expiring, old and weak certificates, never seen. */
function deviceCertificateFindings(ctx: EvaluationContext, device: DeviceRow | undefined, deviceId: string, certs: readonly CertificateRow[], weakOf: (row: CertificateRow) => string | null): StoredFinding[] {
  const out: StoredFinding[] = [];
  const { expiryWindowDays, certificateMaxAgeDays } = ctx.facts.settings;
  const live = device ? LIVE_STATUSES.has(device.status) : true;
  const unexpired = certs.filter((c) => Date.parse(c.notAfter) > ctx.now);
  for (const cert of unexpired) {
    const weak = weakOf(cert);
    if (weak) out.push(finding("device-key-weak", cert.serial, [{ kind: "device", id: deviceId }, { kind: "certificate", id: cert.serial }], { serial: cert.serial, problem: weak }));
  }
  if (!live) return out;
  // Only the certificate the device will use next matters: the one that lasts longest.
  const newest = certs.reduce<CertificateRow | undefined>((best, c) => (!best || c.notAfter > best.notAfter ? c : best), undefined);
  if (newest) {
    const left = Date.parse(newest.notAfter) - ctx.now;
    if (left <= expiryWindowDays * DAY_MS)
      out.push(
        finding(
          "device-certificate-expiring",
          deviceId,
          [{ kind: "device", id: deviceId }, { kind: "certificate", id: newest.serial }],
          { serial: newest.serial, notAfter: newest.notAfter, daysLeft: Math.floor(left / DAY_MS), expired: left <= 0, windowDays: expiryWindowDays },
          left <= 0 ? "high" : undefined,
        ),
      );
    const age = ctx.now - Date.parse(newest.notBefore);
    if (left > 0 && age > certificateMaxAgeDays * DAY_MS)
      out.push(finding("device-certificate-old", deviceId, [{ kind: "device", id: deviceId }, { kind: "certificate", id: newest.serial }], { serial: newest.serial, notBefore: newest.notBefore, ageDays: Math.floor(age / DAY_MS), maxAgeDays: certificateMaxAgeDays }));
  }
  return out;
}

function neverSeen(ctx: EvaluationContext, device: DeviceRow): StoredFinding | null {
  if (device.status !== "active" || device.lastSeenAt) return null;
  const graceMs = ctx.facts.settings.neverSeenGraceDays * DAY_MS;
  if (ctx.now - Date.parse(device.createdAt) < graceMs) return null;
  return finding("device-never-seen", device.id, [{ kind: "device", id: device.id }], { createdAt: device.createdAt, graceDays: ctx.facts.settings.neverSeenGraceDays });
}

function sharedKeyFinding(spki: string, owners: Map<string, string[]>): StoredFinding | null {
  if (owners.size < 2) return null;
  const devices = [...owners.keys()].sort();
  return finding(
    "device-certificate-shared",
    spki,
    devices.map((id) => ({ kind: "device", id })),
    { spkiSha256: spki, devices: devices.length, credentials: Object.fromEntries(devices.slice(0, 20).map((id) => [id, owners.get(id)!])) },
  );
}

function registeredKeyFacts(ctx: EvaluationContext, key: RegisteredKeyRow): string | null {
  try {
    return ctx.facts.keyFacts.spkiPem(key.spkiPem).spkiSha256;
  } catch {
    return null;
  }
}

/** The device-scoped results of a full pass, and the index that re-evaluation reuses. */
export interface FleetPass {
  index: FleetIndex;
  results: Map<string, CheckResult>;
}

/** Streams every device and certificate once and evaluates the device-scoped checks over them. */
export async function evaluateFleet(ctx: EvaluationContext, groups: ReadonlyMap<string, GroupPostureSettings> | null, onProgress?: (done: number, what: string) => void): Promise<FleetPass> {
  const index = new FleetIndex();
  const devices = new Map<string, DeviceRow>();
  const found = { expiring: [] as StoredFinding[], old: [] as StoredFinding[], weak: [] as StoredFinding[], never: [] as StoredFinding[], silent: [] as StoredFinding[], network: [] as StoredFinding[], firmware: [] as StoredFinding[] };
  for (let after: string | null = null; ; ) {
    const page = await ctx.data.devicesPage(after, PAGE);
    for (const device of page) {
      devices.set(device.id, device);
      const never = neverSeen(ctx, device);
      if (never) found.never.push(never);
      const silent = groups ? silentDevice(ctx, device, groups) : null;
      if (silent) found.silent.push(silent);
      const outside = groups ? outsideAllowedNetwork(device, groups) : null;
      if (outside) found.network.push(outside);
      const outdated = groups ? outdatedFirmware(device, groups) : null;
      if (outdated) found.firmware.push(outdated);
    }
    index.devices += page.length;
    onProgress?.(index.devices, "devices");
    if (page.length < PAGE) break;
    after = page.at(-1)!.id;
  }
  const weakSerials = new Map<string, string>();
  // Certificates arrive ordered by serial, so one device's certificates are gathered across the pass.
  const byDevice = new Map<string, CertificateRow[]>();
  for (let after: string | null = null; ; ) {
    const { certificates: page, next } = await ctx.data.certificatesPage(after, PAGE);
    for (const cert of page) {
      if (Date.parse(cert.notAfter) <= ctx.now) {
        // Expired: it counts only as the device's newest certificate (an expired credential).
        const list = byDevice.get(cert.deviceId);
        if (list) list.push({ ...cert, der: Buffer.alloc(0) });
        else byDevice.set(cert.deviceId, [{ ...cert, der: Buffer.alloc(0) }]);
        continue;
      }
      index.activeByIssuer.set(cert.issuerSerial, (index.activeByIssuer.get(cert.issuerSerial) ?? 0) + 1);
      let weak: string | null;
      try {
        const facts = ctx.facts.keyFacts.certificate(cert.der);
        index.addKey(facts.spkiSha256, cert.deviceId, cert.serial);
        weak = ctx.facts.keyFacts.weakness(facts);
      } catch (error) {
        // One unreadable certificate is a finding about it, not the end of the pass.
        weak = `the certificate cannot be parsed (${error instanceof Error ? error.message : String(error)})`;
      }
      const slim: CertificateRow = { ...cert, der: Buffer.alloc(0) };
      if (weak) weakSerials.set(cert.serial, weak);
      const list = byDevice.get(cert.deviceId);
      if (list) list.push(slim);
      else byDevice.set(cert.deviceId, [slim]);
    }
    index.certificates += page.length;
    onProgress?.(index.certificates, "certificates");
    if (next === null) break;
    after = next;
  }
  for (const [deviceId, certs] of byDevice) {
    for (const f of deviceCertificateFindings(ctx, devices.get(deviceId), deviceId, certs, (c) => weakSerials.get(c.serial) ?? null)) {
      if (f.check === "device-key-weak") found.weak.push(f);
      else if (f.check === "device-certificate-expiring") found.expiring.push(f);
      else found.old.push(f);
    }
  }
  for (const key of await ctx.data.registeredKeys()) {
    const spki = registeredKeyFacts(ctx, key);
    if (spki) index.addKey(spki, key.deviceId, key.keyId);
  }
  const shared: StoredFinding[] = [];
  for (const [spki, owners] of index.keyOwners) {
    const f = sharedKeyFinding(spki, owners);
    if (f) shared.push(f);
  }
  const results = new Map<string, CheckResult>([
    ["device-certificate-expiring", result(found.expiring, { certificates: index.certificates, windowDays: ctx.facts.settings.expiryWindowDays })],
    ["device-certificate-old", result(found.old, { certificates: index.certificates, maxAgeDays: ctx.facts.settings.certificateMaxAgeDays })],
    ["device-key-weak", result(found.weak, { certificates: index.certificates })],
    ["device-certificate-shared", result(shared, { keys: index.keyOwners.size })],
    ["device-never-seen", result(found.never, { devices: index.devices })],
    ["device-silent", groups && [...groups.values()].some((g) => g.silenceWindowMs) ? result(found.silent, { devices: index.devices }) : notApplicable(groupSettingReason(groups, "silence window"))],
    ["device-outside-allowed-network", groups && [...groups.values()].some((g) => g.allowedCidrs?.length) ? result(found.network, { devices: index.devices }) : notApplicable(groupSettingReason(groups, "allowed CIDRs"))],
    [
      "device-firmware-outdated",
      groups && [...groups.values()].some((g) => g.minFirmwareSecurityVersion !== undefined) ? result(found.firmware, { devices: index.devices }) : notApplicable(groupSettingReason(groups, "minimum firmware security version")),
    ],
  ]);
  return { index, results };
}

function weakCertificate(ctx: EvaluationContext): (row: CertificateRow) => string | null {
  return (row) => {
    if (row.der.length === 0) return null;
    try {
      return ctx.facts.keyFacts.weakness(ctx.facts.keyFacts.certificate(row.der));
    } catch (error) {
      return `the certificate cannot be parsed (${error instanceof Error ? error.message : String(error)})`;
    }
  };
}

function groupSettingReason(groups: ReadonlyMap<string, GroupPostureSettings> | null, what: string): string {
  return groups ? `no device group sets a ${what} (moat group set)` : `per-group settings (${what}) are not available to this check`;
}

function silentDevice(ctx: EvaluationContext, device: DeviceRow, groups: ReadonlyMap<string, GroupPostureSettings>): StoredFinding | null {
  const window = device.group ? groups.get(device.group)?.silenceWindowMs : undefined;
  if (!window || !LIVE_STATUSES.has(device.status) || !device.lastSeenAt) return null;
  const silentMs = ctx.now - Date.parse(device.lastSeenAt);
  if (silentMs <= window) return null;
  return finding("device-silent", device.id, [{ kind: "device", id: device.id }], { group: device.group, lastSeenAt: device.lastSeenAt, silentSeconds: Math.floor(silentMs / 1000), windowSeconds: Math.floor(window / 1000) });
}

function outdatedFirmware(device: DeviceRow, groups: ReadonlyMap<string, GroupPostureSettings>): StoredFinding | null {
  const min = device.group ? groups.get(device.group)?.minFirmwareSecurityVersion : undefined;
  if (min === undefined || !LIVE_STATUSES.has(device.status)) return null;
  if (device.securityVersion !== null && device.securityVersion >= min) return null;
  // A device that never reported its firmware cannot be shown to meet the minimum.
  return finding("device-firmware-outdated", device.id, [{ kind: "device", id: device.id }], { group: device.group, securityVersion: device.securityVersion, minimum: min }, device.securityVersion === null ? "medium" : undefined);
}

const blockLists = new WeakMap<readonly string[], BlockList>();
function outsideAllowedNetwork(device: DeviceRow, groups: ReadonlyMap<string, GroupPostureSettings>): StoredFinding | null {
  const cidrs = device.group ? groups.get(device.group)?.allowedCidrs : undefined;
  const address = device.lastSeenAddress?.replace(/^::ffff:/, "") ?? null;
  if (!cidrs?.length || !address || isIP(address) === 0) return null;
  let list = blockLists.get(cidrs);
  if (!list) {
    list = new BlockList();
    for (const cidr of cidrs) {
      const [net, bits] = cidr.split("/");
      const family = isIP(net ?? "") === 6 ? "ipv6" : "ipv4";
      list.addSubnet(net!, Number(bits ?? (family === "ipv6" ? 128 : 32)), family);
    }
    blockLists.set(cidrs, list);
  }
  if (list.check(address, isIP(address) === 6 ? "ipv6" : "ipv4")) return null;
  return finding("device-outside-allowed-network", device.id, [{ kind: "device", id: device.id }, { kind: "address", id: address }], { group: device.group, address, allowedCidrs: cidrs });
}

/** Re-evaluates the device-scoped checks for one device; returns its findings and the keys they replace. */
export async function evaluateDevice(ctx: EvaluationContext, index: FleetIndex, deviceId: string, groups: ReadonlyMap<string, GroupPostureSettings> | null): Promise<{ findings: StoredFinding[]; keys: string[] }> {
  const [device, certs, keys] = await Promise.all([ctx.data.device(deviceId), ctx.data.certificatesOfDevice(deviceId), ctx.data.registeredKeys(deviceId)]);
  const findings: StoredFinding[] = [];
  const replaced = new Set<string>(["device-certificate-expiring", "device-certificate-old", "device-never-seen", "device-silent", "device-outside-allowed-network", "device-firmware-outdated"].map((check) => `${check}:${deviceId}`));
  const before = index.dropDevice(deviceId);
  if (device) {
    findings.push(...deviceCertificateFindings(ctx, device, deviceId, certs, weakCertificate(ctx)));
    for (const cert of certs) {
      replaced.add(`device-key-weak:${cert.serial}`);
      if (Date.parse(cert.notAfter) > ctx.now) {
        try {
          index.addKey(ctx.facts.keyFacts.certificate(cert.der).spkiSha256, deviceId, cert.serial);
        } catch {
          // Reported by device-key-weak above.
        }
      }
    }
    for (const key of keys) {
      const spki = registeredKeyFacts(ctx, key);
      if (spki) index.addKey(spki, deviceId, key.keyId);
    }
    const never = neverSeen(ctx, device);
    if (never) findings.push(never);
    if (groups) {
      const silent = silentDevice(ctx, device, groups);
      if (silent) findings.push(silent);
      const outside = outsideAllowedNetwork(device, groups);
      if (outside) findings.push(outside);
      const outdated = outdatedFirmware(device, groups);
      if (outdated) findings.push(outdated);
    }
  }
  for (const spki of new Set([...before, ...(index.deviceKeys.get(deviceId) ?? [])])) {
    replaced.add(`device-certificate-shared:${spki}`);
    const owners = index.keyOwners.get(spki);
    const shared = owners ? sharedKeyFinding(spki, owners) : null;
    if (shared) findings.push(shared);
  }
  for (const f of await revokedConnected(ctx, deviceId)) findings.push(f);
  replaced.add(`revoked-certificate-connected:${deviceId}`);
  for (const f of (await clientIdConflicts(ctx, deviceId)).findings) findings.push(f);
  replaced.add(`client-id-conflict:${deviceId}`);
  return { findings, keys: [...replaced] };
}

async function revokedConnected(ctx: EvaluationContext, deviceId?: string): Promise<StoredFinding[]> {
  const aliveSince = new Date(ctx.now - ctx.facts.settings.sessionStaleMs).toISOString();
  const rows = await ctx.data.liveSessionsOnRevokedCertificates(aliveSince, deviceId);
  const byDevice = new Map<string, typeof rows>();
  for (const row of rows) byDevice.set(row.deviceId, [...(byDevice.get(row.deviceId) ?? []), row]);
  return [...byDevice].map(([id, sessions]) =>
    finding(
      "revoked-certificate-connected",
      id,
      [{ kind: "device", id }, ...sessions.map((s) => ({ kind: "certificate", id: s.certSerial! })), ...sessions.map((s) => ({ kind: "session", id: s.sessionId }))],
      { sessions: sessions.map((s) => ({ session: s.sessionId, serial: s.certSerial, node: s.nodeId, address: s.address, connectedAt: s.connectedAt, revokedAt: s.revokedAt })) },
    ),
  );
}

async function clientIdConflicts(ctx: EvaluationContext, deviceId?: string): Promise<CheckResult> {
  const aliveSince = new Date(ctx.now - ctx.facts.settings.sessionStaleMs).toISOString();
  const [duplicates, takeovers] = await Promise.all([
    ctx.data.liveDuplicateClientIds(aliveSince, deviceId),
    ctx.data.takeovers(new Date(ctx.now - TAKEOVER_WINDOW_MS).toISOString(), deviceId),
  ]);
  const byClient = new Map<string, { deviceId: string; live: Set<string>; addresses: Set<string>; takeovers: number }>();
  const entry = (clientId: string, device: string) => {
    let e = byClient.get(clientId);
    if (!e) byClient.set(clientId, (e = { deviceId: device, live: new Set(), addresses: new Set(), takeovers: 0 }));
    return e;
  };
  for (const s of duplicates) {
    const e = entry(s.clientId, s.deviceId);
    e.live.add(s.sessionId);
    if (s.address) e.addresses.add(s.address);
  }
  for (const t of takeovers) {
    // A reconnect from the same address (a dropped link) is not a conflict; two endpoints are.
    if (!t.previousAddress || !t.address || t.previousAddress === t.address) continue;
    const e = entry(t.clientId, t.deviceId);
    e.takeovers += 1;
    e.addresses.add(t.previousAddress);
    e.addresses.add(t.address);
  }
  const findings = [...byClient]
    .filter(([, e]) => e.live.size > 1 || e.takeovers >= 2)
    .map(([clientId, e]) =>
      finding("client-id-conflict", e.deviceId, [{ kind: "device", id: e.deviceId }, { kind: "client-id", id: clientId }], {
        clientId,
        liveSessions: e.live.size,
        takeoversLast24h: e.takeovers,
        addresses: [...e.addresses].slice(0, 20),
      }),
    );
  return result(findings, { takeoversLast24h: takeovers.length });
}

function lintFindings(lint: readonly LintFinding[], codes: ReadonlySet<string>, check: string): StoredFinding[] {
  return lint
    .filter((l) => codes.has(l.code))
    .map((l) => finding(check, `${l.role}#${l.index}:${l.code}`, [{ kind: "role", id: l.role }], { code: l.code, rule: l.rule, index: l.index, message: l.message }, l.severity));
}

const PERMISSIVE = new Set(["matches-everything", "wildcard-only", "sys-topic", "shared-topic", "operator-wildcard"]);
const MISCONFIGURED = new Set(["never-matches", "deny-shadows-nothing"]);

/** The installation-scoped checks, each independent of the others. */
export const INSTALLATION_CHECKS: Record<string, (ctx: EvaluationContext, pass: () => Promise<FleetPass>) => Promise<CheckResult>> = {
  "ca-certificate-expiring": async (ctx) => {
    const window = ctx.facts.settings.expiryWindowDays * DAY_MS;
    const cas = (await ctx.data.caCertificates()).filter((ca) => ca.active);
    const findings = cas
      .filter((ca) => Date.parse(ca.notAfter) - ctx.now <= window)
      .map((ca) => {
        const left = Date.parse(ca.notAfter) - ctx.now;
        return finding("ca-certificate-expiring", ca.serial, [{ kind: "ca", id: ca.serial }], { role: ca.role, subject: ca.subject, notAfter: ca.notAfter, daysLeft: Math.floor(left / DAY_MS), windowDays: ctx.facts.settings.expiryWindowDays }, left <= 0 ? "critical" : "high");
      });
    return result(findings, { caCertificates: cas.length });
  },
  "ca-key-weak": async (ctx) => {
    const cas = (await ctx.data.caCertificates()).filter((ca) => ca.active || Date.parse(ca.notAfter) > ctx.now);
    const findings = cas.flatMap((ca) => {
      const weak = ctx.facts.keyFacts.weakness(ctx.facts.keyFacts.certificate(ca.certificateDer));
      return weak ? [finding("ca-key-weak", ca.serial, [{ kind: "ca", id: ca.serial }], { role: ca.role, subject: ca.subject, problem: weak })] : [];
    });
    return result(findings, { caCertificates: cas.length });
  },
  "ca-revoked-in-use": async (ctx, pass) => {
    const { index } = await pass();
    const cas = new Map((await ctx.data.caCertificates()).map((ca) => [ca.serial, ca]));
    const findings: StoredFinding[] = [];
    for (const [issuer, count] of index.activeByIssuer) {
      const ca = cas.get(issuer);
      // Moat has no CA revocation; what makes an issuing CA unusable is its end (or, were the foreign key ever lost, its absence).
      const problem = !ca ? "the issuing CA is not in the hierarchy" : Date.parse(ca.notAfter) <= ctx.now ? `the issuing CA expired on ${ca.notAfter}` : null;
      if (problem) findings.push(finding("ca-revoked-in-use", issuer, [{ kind: "ca", id: issuer }], { issuer, activeCertificates: count, problem }));
    }
    return result(findings, { issuers: index.activeByIssuer.size });
  },
  "revoked-certificate-connected": async (ctx) => result(await revokedConnected(ctx)),
  "client-id-conflict": (ctx) => clientIdConflicts(ctx),
  "role-overly-permissive": async (ctx) => {
    const lint = await ctx.facts.lint();
    return result(lintFindings(lint, PERMISSIVE, "role-overly-permissive"), { lintFindings: lint.length });
  },
  "role-misconfigured": async (ctx) => {
    const lint = await ctx.facts.lint();
    return result(lintFindings(lint, MISCONFIGURED, "role-misconfigured"), { lintFindings: lint.length });
  },
  "audit-log-failing": async (ctx) => {
    const chain = await ctx.facts.auditChain();
    const findings: StoredFinding[] = [];
    if (!chain.ok)
      findings.push(finding("audit-log-failing", "chain", [{ kind: "audit-log", id: "chain" }], { entries: chain.entries, problem: chain.problem ?? "verification failed", firstBadSeq: chain.firstBadSeq ?? null }, "critical"));
    if (["silent", "fatal", "error"].includes(ctx.facts.settings.logLevel))
      findings.push(finding("audit-log-failing", "logLevel", [{ kind: "setting", id: "logLevel" }], { logLevel: ctx.facts.settings.logLevel, problem: "operator logging is off or shows errors only" }, "medium"));
    return result(findings, { entries: chain.entries, chainOk: chain.ok, logLevel: ctx.facts.settings.logLevel });
  },
  "plaintext-listener-enabled": async (ctx) => {
    const plain = ctx.facts.settings.plaintextListener;
    return result(plain ? [finding("plaintext-listener-enabled", "mqtt", [{ kind: "listener", id: `mqtt-plain:${plain.port}` }], { setting: "broker.mqttPlainPort", port: plain.port })] : [], { plaintextListener: plain });
  },
  "kek-not-rotated": async (ctx) => {
    const kek = await ctx.facts.kek();
    const maxDays = ctx.facts.settings.kekMaxAgeDays;
    if (!kek.since) return notApplicable("the installation does not record when its KEK became current");
    const ageDays = Math.floor((ctx.now - Date.parse(kek.since)) / DAY_MS);
    const findings = ageDays > maxDays ? [finding("kek-not-rotated", `v${kek.version}`, [{ kind: "kek", id: `v${kek.version}` }], { provider: kek.provider, version: kek.version, since: kek.since, ageDays, maxAgeDays: maxDays })] : [];
    return result(findings, { provider: kek.provider, version: kek.version, since: kek.since, ageDays, maxAgeDays: maxDays });
  },
  "root-ca-key-online": async (ctx) => {
    const roots = (await ctx.data.caCertificates()).filter((ca) => ca.role === "root" && ca.active);
    const findings = roots
      .filter((ca) => ca.keyHeld && !ca.keyLocation)
      .map((ca) => finding("root-ca-key-online", ca.serial, [{ kind: "ca", id: ca.serial }], { subject: ca.subject, keyStorage: "sealed in the installation's database" }));
    return result(findings, { roots: roots.map((r) => ({ serial: r.serial, keyHeld: r.keyHeld, keyLocation: r.keyLocation })) });
  },
  "scanner-open-findings": async (ctx) => {
    const maxDays = ctx.facts.settings.scanMaxAgeDays;
    const scan = await ctx.data.latestScanFindings(new Date(ctx.now - maxDays * DAY_MS).toISOString());
    if (!scan) return notApplicable(`no stored scan finished in the last ${maxDays} days (posture.scanMaxAgeDays); run moat scan --store`);
    const open = scan.findings.filter((f) => ["critical", "high", "medium"].includes(f.severity));
    const findings = open.map((f) =>
      finding(
        "scanner-open-findings",
        `${f.deviceId}:${f.ruleId}:${f.port}`,
        [{ kind: "device", id: f.deviceId! }, { kind: "address", id: f.address }],
        { scan: scan.runId, finishedAt: scan.finishedAt, rule: f.ruleId, title: f.title, address: f.address, port: f.port },
        f.severity as Severity,
      ),
    );
    return result(findings, { scan: scan.runId, finishedAt: scan.finishedAt, fleetFindings: scan.findings.length });
  },
  "segmentation-stale": async (ctx) => {
    const state = await ctx.facts.segmentation();
    if (!state) return notApplicable("no segmentation policy is configured (segmentation.policyFile and segmentation.compiledFile)");
    return result(state.upToDate ? [] : [finding("segmentation-stale", state.compiledFile, [{ kind: "segmentation", id: state.compiledFile }], { policyFile: state.policyFile, compiledFile: state.compiledFile, problem: state.problem ?? "out of date" })], { ...state });
  },
};
