/**
 * The detection quality bench's traffic: a seeded generator of the benign fleet described in
 * benign-model.json (steady, diurnal, bursty-but-normal and reconnecting devices, NAT sites with a few
 * failing devices, rare denied topics) with the attacks of attacks.json injected. Deterministic for a
 * seed. Events come out in time order, a minute at a time, so a fleet-day never sits in memory.
 *
 * `npx tsx bench/detect/traffic-model.ts --out events.jsonl` writes the stream as JSONL (audit-log
 * lines plus `traffic.published` lines) for `moat detect rules test RULES --events events.jsonl`.
 */
import { createWriteStream, readFileSync } from "node:fs";
import type { DetectionEvent } from "../../src/detect/index.js";

export type TimedEvent = DetectionEvent & { at: number };
type Range = [number, number];

export interface Attack {
  type: string;
  rule: string;
  subject: { kind: "device" | "address-range"; id: string };
  start: number;
}

export const T0 = Date.parse("2026-01-05T00:00:00.000Z");
const MODEL_DIR = new URL("./", import.meta.url);

export function loadModels(): { benign: any; attacks: any } {
  return { benign: JSON.parse(readFileSync(new URL("benign-model.json", MODEL_DIR), "utf8")), attacks: JSON.parse(readFileSync(new URL("attacks.json", MODEL_DIR), "utf8")) };
}

/** mulberry32: small, fast, seeded. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function addressIn(cidr: string, r: () => number): string {
  const [base, prefix] = cidr.split("/") as [string, string];
  const parts = base.split(".").map(Number);
  const value = ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
  const hostBits = 32 - Number(prefix);
  const host = 1 + Math.floor(r() * (2 ** hostBits - 2));
  const v = (value + host) >>> 0;
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join(".");
}

interface DeviceSim {
  id: string;
  group: string;
  profile: string;
  address: string;
  next: number;
  period: number;
  bytes: Range;
  nextBurst: number;
  nextReconnect: number;
  nextFailure: number;
}

/** The benign stream with the attacks mixed in, in time order; `attacks` lists what was injected. */
export function generate(options: { devices?: number; hours?: number } = {}): { devices: Map<string, string>; groups: { group: string; allowedCidrs: string[]; minSecurityVersion: null }[]; attacks: Attack[]; deviceHours: number; events: () => Generator<TimedEvent> } {
  const { benign, attacks: attackModel } = loadModels();
  const r = rng(benign.seed);
  const count = options.devices ?? benign.devices;
  const hours = options.hours ?? benign.hours;
  const end = T0 + hours * 3_600_000;
  const uni = (range: Range) => range[0] + r() * (range[1] - range[0]);
  const groupNames = Object.keys(benign.groups);
  const profiles = Object.entries(benign.profiles) as [string, any][];
  const devices: DeviceSim[] = [];
  for (let i = 0; i < count; i++) {
    let pick = r();
    let profile = profiles[0]!;
    for (const p of profiles) {
      if (pick < p[1].share) {
        profile = p;
        break;
      }
      pick -= p[1].share;
    }
    const group = groupNames[i % groupNames.length]!;
    const spec = profile[1];
    devices.push({
      id: `dev-${String(i).padStart(5, "0")}`,
      group,
      profile: profile[0],
      address: addressIn(benign.groups[group], r),
      next: T0 + r() * 10_000,
      period: uni(spec.periodSeconds) * 1000,
      bytes: spec.bytes,
      nextBurst: spec.burstEveryMinutes ? T0 + uni(spec.burstEveryMinutes) * 60_000 : Infinity,
      nextReconnect: spec.reconnectEveryMinutes ? T0 + uni(spec.reconnectEveryMinutes) * 60_000 : Infinity,
      nextFailure: spec.authFailurePerHour ? T0 + (-Math.log(1 - r()) / spec.authFailurePerHour) * 3_600_000 : Infinity,
    });
  }
  // --- attacks: subjects and start times drawn from their own seed ---
  const ra = rng(attackModel.seed);
  const auni = (range: Range) => range[0] + ra() * (range[1] - range[0]);
  const attacks: Attack[] = [];
  const planned: { attack: Attack; emit: (out: TimedEvent[]) => void }[] = [];
  const used = new Set<string>();
  const pickDevice = (filter: (d: DeviceSim) => boolean) => {
    for (;;) {
      const d = devices[Math.floor(ra() * devices.length)]!;
      if (filter(d) && !used.has(d.id)) {
        used.add(d.id);
        return d;
      }
    }
  };
  const startTime = () => T0 + 3_600_000 + ra() * (end - T0 - 3_700_000);
  for (const [type, spec] of Object.entries(attackModel.types) as [string, any][]) {
    for (let k = 0; k < attackModel.perType; k++) {
      const start = startTime();
      if (type === "burst") {
        const d = pickDevice((x) => x.profile === "steady" || x.profile === "diurnal");
        const n = Math.round(auni(spec.messages));
        const secs = auni(spec.seconds);
        planned.push({ attack: { type, rule: spec.rule, subject: { kind: "device", id: d.id }, start }, emit: (out) => { for (let i = 0; i < n; i++) out.push({ at: start + (i * secs * 1000) / n, type: "traffic.published", subject: d.id, data: { bytes: 150 } }); } });
      } else if (type === "topic-scan") {
        const d = pickDevice(() => true);
        const n = Math.round(auni(spec.topics));
        planned.push({ attack: { type, rule: spec.rule, subject: { kind: "device", id: d.id }, start }, emit: (out) => { let t = start; for (let i = 0; i < n; i++) { out.push({ at: t, type: "acl.denied", subject: d.id, actor: `device:${d.id}`, data: { action: i % 2 ? "subscribe" : "publish", topic: `devices/dev-${i}/commands/#`, reason: "policy" } }); t += auni(spec.intervalMs); } } });
      } else if (type === "brute-force") {
        const net = `45.${Math.floor(ra() * 250)}.${Math.floor(ra() * 250)}`;
        const n = Math.round(auni(spec.failures));
        const ids = Math.round(auni(spec.clientIds));
        const rate = auni(spec.perSecond);
        planned.push({
          attack: { type, rule: spec.rule, subject: { kind: "address-range", id: `${net}.0/24` }, start },
          emit: (out) => { for (let i = 0; i < n; i++) { const id = `guess-${i % ids}`; out.push({ at: start + (i * 1000) / rate, type: "auth.failed", subject: id, actor: `device:${id}`, data: { protocol: "mqtt", reason: "token_signature_invalid", address: `${net}.${1 + (i % 200)}`, clientId: id } }); } },
        });
      } else if (type === "new-source-network") {
        const d = pickDevice((x) => x.group !== "field");
        planned.push({ attack: { type, rule: spec.rule, subject: { kind: "device", id: d.id }, start }, emit: (out) => out.push({ at: start, type: "device.connected", subject: d.id, actor: `device:${d.id}`, data: { protocol: "mqtt", address: addressIn(spec.from, ra), clientId: d.id } }) });
      } else if (type === "flapping") {
        const d = pickDevice(() => true);
        const n = Math.round(auni(spec.connects));
        const secs = auni(spec.seconds);
        planned.push({ attack: { type, rule: spec.rule, subject: { kind: "device", id: d.id }, start }, emit: (out) => { for (let i = 0; i < n; i++) { const t = start + (i * secs * 1000) / n; out.push({ at: t, type: "device.connected", subject: d.id, actor: `device:${d.id}`, data: { protocol: "mqtt", address: d.address, clientId: d.id } }); out.push({ at: t + 300, type: "device.disconnected", subject: d.id, actor: `device:${d.id}`, data: { protocol: "mqtt", reason: "client" } }); } } });
      }
    }
  }
  for (const p of planned) attacks.push(p.attack);
  const natSites = Array.from({ length: benign.background.natFailures.sites }, (_, i) => ({ net: `10.${90 + (i % 10)}.${i}`, devices: Array.from({ length: benign.background.natFailures.devicesPerSite }, (_, k) => `nat-${i}-${k}`) }));

  function* events(): Generator<TimedEvent> {
    const rb = rng(benign.seed + 1);
    const attackEvents: TimedEvent[] = [];
    for (const p of planned) p.emit(attackEvents);
    attackEvents.sort((a, b) => a.at - b.at);
    let ai = 0;
    const connects: TimedEvent[] = devices.map((d) => ({ at: T0 + rb() * 5000, type: "device.connected", subject: d.id, actor: `device:${d.id}`, data: { protocol: "mqtt", address: d.address, clientId: d.id } }));
    for (let slice = T0; slice < end; slice += 60_000) {
      const until = slice + 60_000;
      const out: TimedEvent[] = connects.filter((c) => c.at >= slice && c.at < until);
      for (const d of devices) {
        const spec = benign.profiles[d.profile];
        while (d.next < until) {
          out.push({ at: d.next, type: "traffic.published", subject: d.id, data: { bytes: Math.round(d.bytes[0] + rb() * (d.bytes[1] - d.bytes[0])) } });
          let period = d.period * (0.9 + rb() * 0.2);
          if (d.profile === "diurnal") period /= Math.max(0.2, 1 + spec.amplitude * Math.sin((2 * Math.PI * (d.next - T0)) / (spec.cycleHours * 3_600_000)));
          d.next += period;
        }
        while (d.nextBurst < until) {
          const n = Math.round(spec.burstMessages[0] + rb() * (spec.burstMessages[1] - spec.burstMessages[0]));
          const secs = spec.burstSeconds[0] + rb() * (spec.burstSeconds[1] - spec.burstSeconds[0]);
          for (let i = 0; i < n; i++) out.push({ at: d.nextBurst + (i * secs * 1000) / n, type: "traffic.published", subject: d.id, data: { bytes: Math.round(d.bytes[0] + rb() * (d.bytes[1] - d.bytes[0])) } });
          d.nextBurst += (spec.burstEveryMinutes[0] + rb() * (spec.burstEveryMinutes[1] - spec.burstEveryMinutes[0])) * 60_000;
        }
        while (d.nextReconnect < until) {
          const quick = Math.round(spec.quickReconnects[0] + rb() * (spec.quickReconnects[1] - spec.quickReconnects[0]));
          for (let i = 0; i < quick; i++) {
            const t = d.nextReconnect + i * 8_000;
            if (d.group === "field") d.address = addressIn(benign.groups.field, rb);
            out.push({ at: t, type: "device.disconnected", subject: d.id, actor: `device:${d.id}`, data: { protocol: "mqtt", reason: "client" } });
            out.push({ at: t + 2000, type: "device.connected", subject: d.id, actor: `device:${d.id}`, data: { protocol: "mqtt", address: d.address, clientId: d.id } });
          }
          d.nextReconnect += (spec.reconnectEveryMinutes[0] + rb() * (spec.reconnectEveryMinutes[1] - spec.reconnectEveryMinutes[0])) * 60_000;
        }
        while (d.nextFailure < until) {
          out.push({ at: d.nextFailure, type: "auth.failed", subject: d.id, actor: `device:${d.id}`, data: { protocol: "mqtt", reason: "token_expired", address: d.address, clientId: d.id } });
          d.nextFailure += (-Math.log(1 - rb()) / spec.authFailurePerHour) * 3_600_000;
        }
        if (rb() < benign.background.deniedSameTopicPerDeviceHour / 60)
          out.push({ at: slice + rb() * 60_000, type: "acl.denied", subject: d.id, actor: `device:${d.id}`, data: { action: "publish", topic: `devices/${d.id}/config`, reason: "policy" } });
      }
      for (const site of natSites)
        if (rb() < benign.background.natFailures.failuresPerHour / 60) {
          const id = site.devices[Math.floor(rb() * site.devices.length)]!;
          out.push({ at: slice + rb() * 60_000, type: "auth.failed", subject: id, actor: `device:${id}`, data: { protocol: "mqtt", reason: "token_expired", address: `${site.net}.${1 + Math.floor(rb() * 200)}`, clientId: id } });
        }
      while (ai < attackEvents.length && attackEvents[ai]!.at < until) out.push(attackEvents[ai++]!);
      out.sort((a, b) => a.at - b.at);
      yield* out;
    }
  }
  return {
    devices: new Map(devices.map((d) => [d.id, d.group])),
    groups: Object.entries(benign.groups).map(([group, cidr]) => ({ group, allowedCidrs: [cidr as string], minSecurityVersion: null })),
    attacks,
    deviceHours: count * hours,
    events,
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop()!) && process.argv.includes("--out")) {
  const out = createWriteStream(process.argv[process.argv.indexOf("--out") + 1]!);
  const { events } = generate();
  for (const e of events()) {
    const { at, ...rest } = e;
    out.write(JSON.stringify({ time: new Date(at).toISOString(), ...rest }) + "\n");
  }
  out.end();
}
