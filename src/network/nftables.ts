import { formatCidr, normalizeCidrs, type Cidr } from "./address.js";
import type { ResolvedPeer, ResolvedPolicy, ResolvedRule, ResolvedVlan } from "./policy-model.js";
import { formatRanges, mergeRanges } from "./services.js";

/** The table every compiled policy replaces as a whole. */
export const NFT_TABLE = "moat_segmentation";

/** nft comments and log prefixes are quoted strings: keep a safe alphabet and the kernel's lengths. */
function quoted(text: string, max: number): string {
  const safe = text.replace(/[^A-Za-z0-9 _.,:()/@=+-]/g, "_");
  return `"${safe.length > max ? safe.slice(0, max) : safe}"`;
}

/** nft identifiers: letters, digits and "_" only. */
function identifier(text: string): string {
  return text.replace(/[^A-Za-z0-9_]/g, "_");
}

function elements(cidrs: readonly Cidr[]): string {
  return normalizeCidrs(cidrs).map(formatCidr).join(", ");
}

function setBlock(name: string, cidrs: readonly Cidr[], comment: string): string[] {
  return [
    `\tset ${name} {`,
    `\t\ttype ipv4_addr`,
    `\t\tflags interval`,
    `\t\tauto-merge`,
    `\t\tcomment ${quoted(comment, 120)}`,
    `\t\telements = { ${elements(cidrs)} }`,
    `\t}`,
  ];
}

class Names {
  readonly networkSet = new Map<string, string>();
  readonly vlanSet = new Map<number, string>();
  /** VLAN name → set name, for rules naming a VLAN as peer. */
  readonly vlanSetByName = new Map<string, string>();

  constructor(policy: ResolvedPolicy) {
    const taken = new Set<string>(["all_vlans"]);
    for (const vlan of policy.vlans) {
      const name = `vlan_${vlan.id}`;
      this.vlanSet.set(vlan.id, name);
      this.vlanSetByName.set(vlan.name, name);
      taken.add(name);
    }
    for (const network of [...policy.networks.keys()].sort()) {
      let name = `net_${identifier(network)}`;
      for (let n = 2; taken.has(name); n++) name = `net_${identifier(network)}_${n}`;
      taken.add(name);
      this.networkSet.set(network, name);
    }
  }

  /** `@set` for one named peer, else an inline anonymous set of the blocks. */
  peerMatch(peers: readonly ResolvedPeer[], cidrs: readonly Cidr[]): string | null {
    if (cidrs.some((c) => c.prefix === 0)) return null;
    if (peers.length === 1) {
      const peer = peers[0]!;
      if (peer.kind === "network") return `@${this.networkSet.get(peer.text)}`;
      if (peer.kind === "vlan") return `@${this.vlanSetByName.get(peer.text)}`;
    }
    const list = normalizeCidrs(cidrs).map(formatCidr);
    return list.length === 1 ? list[0]! : `{ ${list.join(", ")} }`;
  }
}

function serviceMatch(rule: ResolvedRule): string {
  if (rule.ports === null) return rule.proto === "any" ? "" : `meta l4proto ${rule.proto}`;
  const merged = mergeRanges(rule.ports);
  const ports = merged.length === 1 && merged[0]!.from === merged[0]!.to ? String(merged[0]!.from) : `{ ${formatRanges(merged).replace(/, /g, ", ")} }`;
  if (rule.proto === "any") return `meta l4proto { tcp, udp } th dport ${ports}`;
  return `${rule.proto} dport ${ports}`;
}

function ruleLine(policy: ResolvedPolicy, names: Names, rule: ResolvedRule, dropPrefix: string): string {
  const parts: string[] = [];
  if (rule.fromPeers !== null) {
    const match = names.peerMatch(rule.fromPeers, rule.fromCidrs!);
    if (match) parts.push(`ip saddr ${match}`);
  }
  if (rule.toPeers !== null) {
    const match = names.peerMatch(rule.toPeers, rule.toCidrs!);
    if (match) parts.push(`ip daddr ${match}`);
  }
  const service = serviceMatch(rule);
  if (service) parts.push(service);
  parts.push("counter");
  // Egress allows return to the forward chain, where the destination VLAN's ingress rules still apply.
  if (rule.action === "allow") parts.push(rule.direction === "egress" ? "return" : "accept");
  else parts.push(`log prefix ${quoted(dropPrefix, 120)} drop`);
  parts.push(`comment ${quoted(`${rule.vlan.name} rule ${rule.index} line ${rule.line}: ${rule.text}`, 120)}`);
  return `\t\t${parts.join(" ")}`;
}

function vlanChain(policy: ResolvedPolicy, names: Names, vlan: ResolvedVlan, direction: "egress" | "ingress"): string[] {
  const rules = direction === "egress" ? vlan.egress : vlan.ingress;
  const prefix = `moat drop vlan ${vlan.id} ${vlan.name} ${direction}: `;
  const last = rules[rules.length - 1];
  const endsWithDenyAll = last !== undefined && last.action === "deny" && last.ports === null && last.proto === "any" && last.fromCidrs === null && last.toCidrs === null;
  return [
    `\tchain vlan_${vlan.id}_${direction} {`,
    ...rules.map((rule) => ruleLine(policy, names, rule, prefix)),
    // The implicit default deny, unless the policy already ends with "deny: all".
    ...(endsWithDenyAll ? [] : [`\t\tcounter log prefix ${quoted(prefix, 120)} drop comment ${quoted(`${vlan.name} ${direction}: default deny`, 120)}`]),
    `\t}`,
  ];
}

/**
 * Compiles a validated policy to an nftables script for a router that forwards between the VLANs.
 * One `inet` table (replaced atomically: the script declares, deletes and re-creates it), named
 * interval sets per VLAN and network, a forward chain with `policy drop` that accepts
 * established/related packets (replies), jumps to each VLAN's egress and ingress chains, counts every
 * rule and logs every drop with a prefix naming the VLAN. The output depends only on the policy, so
 * compiling the same policy twice gives the same bytes.
 */
export function compileNftables(policy: ResolvedPolicy): string {
  const names = new Names(policy);
  const lines: string[] = [
    `#!/usr/sbin/nft -f`,
    `# Moat network segmentation: ${policy.vlans.length} VLAN(s), ${policy.vlans.reduce((n, v) => n + v.resolvedRules.length, 0)} rule(s).`,
    `# Generated by "moat segment compile"; edit the policy, not this file.`,
    `table inet ${NFT_TABLE}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
  ];
  for (const vlan of policy.vlans) lines.push(...setBlock(names.vlanSet.get(vlan.id)!, [vlan.subnet], `VLAN ${vlan.id} ${vlan.name}`));
  for (const [network, setName] of [...names.networkSet].sort((a, b) => (a[1] < b[1] ? -1 : 1)))
    lines.push(...setBlock(setName, policy.networks.get(network)!.cidrs, `network ${network}`));
  if (policy.vlans.length > 0) lines.push(...setBlock("all_vlans", policy.vlans.map((v) => v.subnet), "every VLAN subnet"));
  lines.push(
    `\tchain forward {`,
    `\t\ttype filter hook forward priority filter; policy drop;`,
    `\t\tct state established,related counter accept comment "replies to allowed connections"`,
    `\t\tct state invalid counter drop comment "not part of any connection"`,
  );
  for (const vlan of policy.vlans) lines.push(`\t\tip saddr @vlan_${vlan.id} counter jump vlan_${vlan.id}_egress`);
  for (const vlan of policy.vlans) lines.push(`\t\tip daddr @vlan_${vlan.id} counter jump vlan_${vlan.id}_ingress`);
  if (policy.vlans.length > 0)
    lines.push(`\t\tip saddr @all_vlans counter accept comment "egress allowed, destination outside every VLAN"`);
  lines.push(`\t\tcounter log prefix "moat drop no vlan: " drop comment "flows touching no VLAN"`, `\t}`);
  for (const vlan of policy.vlans) lines.push(...vlanChain(policy, names, vlan, "egress"), ...vlanChain(policy, names, vlan, "ingress"));
  lines.push(`}`, ``);
  return lines.join("\n");
}
