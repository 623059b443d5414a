/** Well-known service names a rule may use, and the plaintext ports the validator warns about. */

export type Proto = "tcp" | "udp" | "any";

export interface PortRange {
  readonly from: number;
  readonly to: number;
}

export interface ServiceDefinition {
  readonly proto: Proto;
  readonly ports: readonly PortRange[];
}

const single = (...ports: number[]): PortRange[] => ports.map((p) => ({ from: p, to: p }));

/** IANA service-name registry ports (RFC 6335) for the services IoT policies usually name. */
export const KNOWN_SERVICES: Readonly<Record<string, ServiceDefinition>> = {
  ssh: { proto: "tcp", ports: single(22) },
  telnet: { proto: "tcp", ports: single(23) },
  ftp: { proto: "tcp", ports: single(21) },
  http: { proto: "tcp", ports: single(80) },
  https: { proto: "tcp", ports: single(443) },
  mqtt: { proto: "tcp", ports: single(1883, 8883) },
  "mqtt-tls": { proto: "tcp", ports: single(8883) },
  dns: { proto: "any", ports: single(53) },
  ntp: { proto: "udp", ports: single(123) },
  coap: { proto: "udp", ports: single(5683) },
  coaps: { proto: "udp", ports: single(5684) },
  syslog: { proto: "udp", ports: single(514) },
  snmp: { proto: "udp", ports: single(161) },
  modbus: { proto: "tcp", ports: single(502) },
  amqp: { proto: "tcp", ports: single(5672) },
  amqps: { proto: "tcp", ports: single(5671) },
  rdp: { proto: "tcp", ports: single(3389) },
  vnc: { proto: "tcp", ports: single(5900) },
};

/** Ports that carry credentials or data in the clear; allowing them is a finding (ETSI EN 303 645 §5.5-1). */
export const PLAINTEXT_PORTS: ReadonlyArray<{ port: number; proto: "tcp"; service: string }> = [
  { port: 21, proto: "tcp", service: "FTP" },
  { port: 23, proto: "tcp", service: "Telnet" },
  { port: 80, proto: "tcp", service: "HTTP" },
  { port: 1883, proto: "tcp", service: "MQTT without TLS" },
];

export const SSH_PORT = 22;

/** A name for a single port when one known service uses it (for matrix output). */
export function serviceNameOf(port: number, proto: "tcp" | "udp"): string | null {
  for (const [name, def] of Object.entries(KNOWN_SERVICES)) {
    if (name === "mqtt-tls") continue;
    if ((def.proto === proto || def.proto === "any") && def.ports.some((r) => r.from <= port && port <= r.to)) return name;
  }
  return null;
}

export function portInRanges(ranges: readonly PortRange[] | null, port: number): boolean {
  return ranges === null || ranges.some((r) => r.from <= port && port <= r.to);
}

/** True when the ranges `outer` (null = every port) cover every port of `inner`. */
export function rangesCover(outer: readonly PortRange[] | null, inner: readonly PortRange[] | null): boolean {
  if (outer === null) return true;
  if (inner === null) return rangesCover(outer, [{ from: 0, to: 65535 }]);
  const merged = mergeRanges(outer);
  return inner.every((i) => merged.some((o) => o.from <= i.from && i.to <= o.to));
}

/** Sorted, with overlapping or adjacent ranges joined. */
export function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a.from - b.from || a.to - b.to);
  const out: { from: number; to: number }[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.from <= last.to + 1) last.to = Math.max(last.to, r.to);
    else out.push({ from: r.from, to: r.to });
  }
  return out;
}

export function formatRanges(ranges: readonly PortRange[]): string {
  return ranges.map((r) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`)).join(", ");
}
