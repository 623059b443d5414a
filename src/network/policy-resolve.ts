import { cidrListCovers, normalizeCidrs, parseCidr, type Cidr } from "./address.js";
import type { Diagnostic, Policy, ResolvedPeer, ResolvedPolicy, ResolvedRule, ResolvedVlan, Rule, Vlan } from "./policy-model.js";

const EVERYWHERE: Cidr = { base: 0, prefix: 0 };
const LOOKS_LIKE_ADDRESS = /^[0-9.:]+(\/\d+)?$/;

/**
 * Resolves `from`/`to` text: `any`, a `networks:` name, a VLAN name, or an IPv4 address/CIDR.
 * A literal block is "management" when a management network or VLAN contains it.
 */
export function resolvePeer(policy: Policy, text: string): ResolvedPeer | string {
  return new PeerResolver(policy).resolve(text);
}

/** Resolves many peers against one policy with indexed lookups (policies reach thousands of VLANs). */
class PeerResolver {
  private readonly vlanByName: Map<string, Vlan>;
  private readonly managementBlocks: Cidr[];

  constructor(private readonly policy: Policy) {
    this.vlanByName = new Map();
    for (const vlan of policy.vlans) if (!this.vlanByName.has(vlan.name)) this.vlanByName.set(vlan.name, vlan);
    this.managementBlocks = [
      ...[...policy.networks.values()].filter((n) => n.management).flatMap((n) => n.cidrs),
      ...policy.vlans.filter((v) => v.management).map((v) => v.subnet),
    ];
  }

  resolve(text: string): ResolvedPeer | string {
    if (text === "any") return { text, kind: "any", cidrs: [EVERYWHERE], management: false };
    const network = this.policy.networks.get(text);
    if (network) return { text, kind: "network", cidrs: normalizeCidrs(network.cidrs), management: network.management };
    const vlan = this.vlanByName.get(text);
    if (vlan) return { text, kind: "vlan", cidrs: [vlan.subnet], management: vlan.management };
    if (LOOKS_LIKE_ADDRESS.test(text)) {
      const parsed = parseCidr(text);
      if (!parsed.ok) return `"${text}": ${parsed.reason}`;
      return { text, kind: "cidr", cidrs: [parsed.cidr], management: cidrListCovers(this.managementBlocks, [parsed.cidr]) };
    }
    return unknown(text);
  }
}

function unknown(text: string): string {
  return `unknown network "${text}": define it under "networks:" (e.g. ${text}: 10.0.0.0/24) or use a VLAN name, an address or "any"`;
}

function resolvePeers(resolver: PeerResolver, rule: Rule, which: "from" | "to", diagnostics: Diagnostic[]): ResolvedPeer[] | null | undefined {
  const refs = rule[which];
  if (refs === null) return null;
  const peers: ResolvedPeer[] = [];
  for (const ref of refs) {
    const peer = resolver.resolve(ref.text);
    if (typeof peer === "string") {
      diagnostics.push({ severity: "error", kind: "unknown-network", line: ref.line, message: `${which} ${peer}` });
      return undefined;
    }
    peers.push(peer);
  }
  return peers;
}

function resolveVlan(resolver: PeerResolver, vlan: Vlan, diagnostics: Diagnostic[]): ResolvedVlan {
  const resolvedRules: ResolvedRule[] = [];
  for (const rule of vlan.rules) {
    const fromPeers = resolvePeers(resolver, rule, "from", diagnostics);
    const toPeers = resolvePeers(resolver, rule, "to", diagnostics);
    if (fromPeers === undefined || toPeers === undefined) continue;
    resolvedRules.push({
      ...rule,
      vlan,
      fromPeers,
      toPeers,
      fromCidrs: fromPeers === null ? null : normalizeCidrs(fromPeers.flatMap((p) => p.cidrs)),
      toCidrs: toPeers === null ? null : normalizeCidrs(toPeers.flatMap((p) => p.cidrs)),
    });
  }
  return {
    ...vlan,
    resolvedRules,
    egress: resolvedRules.filter((r) => r.direction === "egress"),
    ingress: resolvedRules.filter((r) => r.direction === "ingress"),
  };
}

/** Resolves every rule's peers; a rule naming an unknown network is reported and left out. */
export function resolvePolicy(policy: Policy): { resolved: ResolvedPolicy; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const resolver = new PeerResolver(policy);
  const vlans = policy.vlans.map((vlan) => resolveVlan(resolver, vlan, diagnostics));
  return { resolved: { vlans, networks: policy.networks }, diagnostics };
}
