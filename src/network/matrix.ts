import { cidrContainsCidr, cidrListCovers, cidrsOverlap, type Cidr } from "./address.js";
import type { ResolvedPolicy, ResolvedRule, ResolvedVlan } from "./policy-model.js";
import { mergeRanges, serviceNameOf, type PortRange } from "./services.js";

/** A row or column of the matrix: a VLAN, a named network, or every other address. */
export interface MatrixEndpoint {
  readonly kind: "vlan" | "network" | "other";
  readonly name: string;
}

export interface PortSet {
  readonly tcp: readonly PortRange[];
  readonly udp: readonly PortRange[];
}

export interface MatrixCell {
  readonly from: string;
  readonly to: string;
  /** Ports every host of `from` may open to every host of `to`. */
  readonly allowed: PortSet;
  /** Ports only some hosts may use (a rule names part of a subnet). */
  readonly partial: PortSet;
  /** True when every TCP and UDP port (and, by an `all` rule, other protocols) is allowed. */
  readonly all: boolean;
  /** Both ends in one VLAN: switched, not routed, so not governed by the policy. */
  readonly sameVlan: boolean;
}

export interface ReachabilityMatrix {
  readonly endpoints: readonly MatrixEndpoint[];
  readonly cells: readonly MatrixCell[];
}

type Match = "full" | "partial" | "none";

interface Endpoint extends MatrixEndpoint {
  readonly blocks: readonly Cidr[] | null;
  readonly vlan: ResolvedVlan | null;
}

function classify(peer: readonly Cidr[] | null, endpoint: Endpoint, known: readonly Cidr[]): Match {
  if (peer === null || peer.some((c) => c.prefix === 0)) return "full";
  if (endpoint.blocks === null) return peer.some((p) => !cidrListCovers(known, [p])) ? "partial" : "none";
  if (cidrListCovers(peer, endpoint.blocks)) return "full";
  return peer.some((p) => endpoint.blocks!.some((b) => cidrsOverlap(p, b))) ? "partial" : "none";
}

function evaluate(rules: readonly { rule: ResolvedRule; match: Match }[], proto: "tcp" | "udp", port: number, optimistic: boolean): boolean {
  for (const { rule, match } of rules) {
    if (match === "none") continue;
    if (rule.proto !== "any" && rule.proto !== proto) continue;
    if (rule.ports !== null && !rule.ports.some((r) => r.from <= port && port <= r.to)) continue;
    if (match === "partial" && (rule.action === "allow") !== optimistic) continue;
    return rule.action === "allow";
  }
  return false;
}

/** Port intervals on which every rule of the lists behaves the same. */
function elementaryIntervals(rules: readonly ResolvedRule[]): PortRange[] {
  const cuts = new Set<number>([1, 65536]);
  for (const rule of rules) for (const r of rule.ports ?? []) cuts.add(r.from).add(r.to + 1);
  const sorted = [...cuts].sort((a, b) => a - b);
  return sorted.slice(0, -1).map((from, i) => ({ from, to: sorted[i + 1]! - 1 }));
}

function cell(from: Endpoint, to: Endpoint, known: readonly Cidr[]): MatrixCell {
  const sameVlan = from.vlan !== null && from.vlan === to.vlan;
  const empty = { tcp: [], udp: [] };
  if (sameVlan || (!from.vlan && !to.vlan)) return { from: from.name, to: to.name, allowed: empty, partial: empty, all: false, sameVlan };
  const egress = (from.vlan?.egress ?? []).map((rule) => ({ rule, match: classify(rule.toCidrs, to, known) }));
  const ingress = (to.vlan?.ingress ?? []).map((rule) => {
    const f = classify(rule.fromCidrs, from, known);
    const t = classify(rule.toCidrs, to, known);
    return { rule, match: (f === "none" || t === "none" ? "none" : f === "full" && t === "full" ? "full" : "partial") as Match };
  });
  const intervals = elementaryIntervals([...egress, ...ingress].map((x) => x.rule));
  const allowed: Record<"tcp" | "udp", PortRange[]> = { tcp: [], udp: [] };
  const partial: Record<"tcp" | "udp", PortRange[]> = { tcp: [], udp: [] };
  for (const proto of ["tcp", "udp"] as const) {
    for (const interval of intervals) {
      const pass = (optimistic: boolean): boolean =>
        (!from.vlan || evaluate(egress, proto, interval.from, optimistic)) && (!to.vlan || evaluate(ingress, proto, interval.from, optimistic));
      if (pass(false)) allowed[proto].push(interval);
      else if (pass(true)) partial[proto].push(interval);
    }
  }
  const merged = { tcp: mergeRanges(allowed.tcp), udp: mergeRanges(allowed.udp) };
  const everything = (list: PortRange[]) => list.length === 1 && list[0]!.from === 1 && list[0]!.to === 65535;
  return {
    from: from.name,
    to: to.name,
    allowed: merged,
    partial: { tcp: mergeRanges(partial.tcp), udp: mergeRanges(partial.udp) },
    all: everything(merged.tcp) && everything(merged.udp),
    sameVlan,
  };
}

/**
 * Which VLAN (or named network) may open connections to which, on which TCP/UDP ports, under the
 * same semantics as the simulator. Where a rule names only part of a subnet, the ports some hosts may
 * use are listed as `partial`.
 */
export function buildMatrix(policy: ResolvedPolicy): ReachabilityMatrix {
  const vlanHolding = (blocks: readonly Cidr[]): ResolvedVlan | null =>
    policy.vlans.find((v) => blocks.every((b) => cidrContainsCidr(v.subnet, b))) ?? null;
  const endpoints: Endpoint[] = [
    ...policy.vlans.map((v) => ({ kind: "vlan" as const, name: v.name, blocks: [v.subnet], vlan: v })),
    ...[...policy.networks.values()].map((n) => ({ kind: "network" as const, name: n.name, blocks: n.cidrs, vlan: vlanHolding(n.cidrs) })),
    { kind: "other" as const, name: "other", blocks: null, vlan: null },
  ];
  const known = endpoints.flatMap((e) => e.blocks ?? []);
  const cells: MatrixCell[] = [];
  for (const from of endpoints) for (const to of endpoints) if (from !== to) cells.push(cell(from, to, known));
  return { endpoints: endpoints.map(({ kind, name }) => ({ kind, name })), cells };
}

function describePorts(ports: PortSet): string {
  const parts: string[] = [];
  for (const proto of ["tcp", "udp"] as const) {
    const list = ports[proto];
    if (list.length === 0) continue;
    if (list.length === 1 && list[0]!.from === 1 && list[0]!.to === 65535) {
      parts.push(`${proto} any`);
      continue;
    }
    const items = list.map((r) => {
      if (r.from !== r.to) return `${r.from}-${r.to}`;
      const name = serviceNameOf(r.from, proto);
      return name ? `${r.from}(${name})` : String(r.from);
    });
    parts.push(`${proto} ${items.join(",")}`);
  }
  return parts.join("; ");
}

/** A cell as short text: `all`, `tcp 443(https),8883(mqtt)`, `-` (denied) or `same vlan`. */
export function describeCell(c: MatrixCell): string {
  if (c.sameVlan) return "same vlan";
  if (c.all) return "all";
  const allowed = describePorts(c.allowed);
  const partial = describePorts(c.partial);
  const text = [allowed, partial ? `some hosts: ${partial}` : ""].filter((s) => s !== "").join("; ");
  return text === "" ? "-" : text;
}

/** The matrix as a list, one line per source and destination that may connect. */
export function formatMatrix(matrix: ReachabilityMatrix): string {
  const lines: string[] = [];
  for (const c of matrix.cells) {
    const text = describeCell(c);
    if (text === "-" || c.sameVlan) continue;
    lines.push(`${c.from} -> ${c.to}: ${text}`);
  }
  return lines.length === 0 ? "no VLAN may reach any other\n" : `${lines.join("\n")}\n`;
}

/** The matrix as a grid: one row per source, one column per destination (`-` = denied). */
export function formatMatrixGrid(matrix: ReachabilityMatrix): string {
  const names = matrix.endpoints.map((e) => e.name);
  const byPair = new Map(matrix.cells.map((c) => [`${c.from}\u0000${c.to}`, c]));
  const header = ["from \\ to", ...names];
  const rows = names.map((from) => [from, ...names.map((to) => (from === to ? "·" : describeCell(byPair.get(`${from}\u0000${to}`)!)))]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => row[i]!.length)));
  const render = (row: string[]) => row.map((cellText, i) => cellText.padEnd(widths[i]!)).join(" | ").trimEnd();
  return [render(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(render)].join("\n") + "\n";
}
