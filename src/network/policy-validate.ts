import { cidrContainsCidr, cidrListCovers, formatCidr, lastAddress } from "./address.js";
import type { Diagnostic, ResolvedPeer, ResolvedPolicy, ResolvedRule, ResolvedVlan } from "./policy-model.js";
import { PLAINTEXT_PORTS, SSH_PORT, formatRanges, portInRanges, rangesCover } from "./services.js";

/** IEEE 802.1Q: VLAN ids 0 and 4095 are reserved. */
const VLAN_ID_MIN = 1;
const VLAN_ID_MAX = 4094;

function push(out: Diagnostic[], severity: Diagnostic["severity"], kind: string, line: number, message: string): void {
  out.push({ severity, kind, line, message });
}

function checkIdsAndNames(policy: ResolvedPolicy, out: Diagnostic[]): void {
  const byId = new Map<number, ResolvedVlan>();
  const byName = new Map<string, ResolvedVlan>();
  for (const vlan of policy.vlans) {
    if (vlan.id < VLAN_ID_MIN || vlan.id > VLAN_ID_MAX)
      push(out, "error", "vlan-id-range", vlan.line, `VLAN id ${vlan.id} (${vlan.name}) is outside ${VLAN_ID_MIN}-${VLAN_ID_MAX} (IEEE 802.1Q)`);
    const sameId = byId.get(vlan.id);
    if (sameId) push(out, "error", "vlan-id-duplicate", vlan.line, `VLAN id ${vlan.id} (${vlan.name}) is already used by ${sameId.name} on line ${sameId.line}`);
    else byId.set(vlan.id, vlan);
    const sameName = byName.get(vlan.name);
    if (sameName) push(out, "error", "vlan-name-duplicate", vlan.line, `VLAN name "${vlan.name}" is already used on line ${sameName.line}`);
    else byName.set(vlan.name, vlan);
    const network = policy.networks.get(vlan.name);
    if (network)
      push(out, "error", "name-ambiguous", vlan.line, `"${vlan.name}" names both a VLAN and a network (line ${network.line}); rules could not tell them apart`);
  }
}

/** Sorting by start address finds every overlap in O(n log n): a block overlaps the widest block before it or none. */
function checkOverlaps(policy: ResolvedPolicy, out: Diagnostic[]): void {
  const sorted = [...policy.vlans].sort((a, b) => a.subnet.base - b.subnet.base || a.subnet.prefix - b.subnet.prefix);
  let widest: ResolvedVlan | null = null;
  for (const vlan of sorted) {
    if (widest && vlan.subnet.base <= lastAddress(widest.subnet)) {
      const [first, second] = widest.line <= vlan.line ? [widest, vlan] : [vlan, widest];
      push(out, "error", "subnet-overlap", second.line,
        `subnet ${formatCidr(second.subnet)} of VLAN ${second.id} (${second.name}) overlaps ${formatCidr(first.subnet)} of VLAN ${first.id} (${first.name}, line ${first.line})`);
    }
    if (!widest || lastAddress(vlan.subnet) > lastAddress(widest.subnet)) widest = vlan;
  }
}

function peersCover(outer: readonly unknown[] | null, outerCidrs: ResolvedRule["fromCidrs"], innerCidrs: ResolvedRule["fromCidrs"]): boolean {
  if (outer === null) return true;
  if (innerCidrs === null) return outerCidrs!.some((c) => c.prefix === 0);
  return cidrListCovers(outerCidrs!, innerCidrs);
}

/** True when every flow `later` matches is matched by `earlier` (same direction). */
export function ruleCovers(earlier: ResolvedRule, later: ResolvedRule): boolean {
  if (earlier.direction !== later.direction) return false;
  if (earlier.proto !== "any" && earlier.proto !== later.proto) return false;
  if (!rangesCover(earlier.ports, later.ports)) return false;
  if (!peersCover(earlier.fromPeers, earlier.fromCidrs, later.fromCidrs)) return false;
  return peersCover(earlier.toPeers, earlier.toCidrs, later.toCidrs);
}

function checkShadowing(vlan: ResolvedVlan, out: Diagnostic[]): void {
  for (const list of [vlan.egress, vlan.ingress]) {
    for (let j = 1; j < list.length; j++) {
      const later = list[j]!;
      const earlier = list.slice(0, j).find((rule) => ruleCovers(rule, later));
      if (!earlier) continue;
      if (earlier.action !== later.action)
        push(out, "error", "rule-shadowed", later.line,
          `"${later.text}" in VLAN ${vlan.name} never applies: "${earlier.text}" on line ${earlier.line} matches every flow it matches first`);
      else
        push(out, "warning", "rule-redundant", later.line, `"${later.text}" in VLAN ${vlan.name} is redundant: "${earlier.text}" on line ${earlier.line} already matches it`);
    }
  }
}

function isUnrestricted(rule: ResolvedRule): boolean {
  return rule.proto === "any" && rule.ports === null && rule.toPeers === null && (rule.fromPeers === null || rule.fromCidrs!.some((c) => c.prefix === 0));
}

function checkFinalDeny(vlan: ResolvedVlan, out: Diagnostic[]): void {
  const last = vlan.resolvedRules[vlan.resolvedRules.length - 1];
  if (vlan.rules.length === 0) {
    push(out, "warning", "no-rules", vlan.line, `VLAN ${vlan.id} (${vlan.name}) has no firewall_rules: everything to and from it is denied`);
    return;
  }
  if (!last || last.action !== "deny" || !isUnrestricted(last))
    push(out, "warning", "no-final-deny", vlan.line, `VLAN ${vlan.id} (${vlan.name}) does not end with "deny: all"; it relies on the implicit default deny`);
}

function sourcesOf(rule: ResolvedRule): { management: boolean; label: string }[] {
  if (rule.direction === "egress") return [{ management: rule.vlan.management, label: `VLAN ${rule.vlan.name}` }];
  return (rule.fromPeers as ResolvedPeer[]).map((p) => ({ management: p.management, label: p.kind === "any" ? "anywhere" : p.text }));
}

function checkFindings(vlan: ResolvedVlan, out: Diagnostic[]): void {
  for (const rule of vlan.resolvedRules) {
    if (rule.action !== "allow") continue;
    const coversTcp = rule.proto === "tcp" || rule.proto === "any";
    if (rule.ports !== null && coversTcp) {
      for (const plain of PLAINTEXT_PORTS)
        if (portInRanges(rule.ports, plain.port))
          push(out, "warning", "plaintext-service", rule.line,
            `"${rule.text}" in VLAN ${vlan.name} allows ${plain.service} (${plain.port}/tcp), which carries credentials and data in plaintext; prefer its TLS port`);
    }
    const unsafeSources = sourcesOf(rule).filter((s) => !s.management);
    if (rule.ports === null && rule.proto === "any") {
      if (unsafeSources.length > 0)
        push(out, "warning", "allow-all-non-management", rule.line,
          `"${rule.text}" in VLAN ${vlan.name} allows every service from ${unsafeSources.map((s) => s.label).join(", ")}, which is not a management network`);
      continue;
    }
    if (rule.direction === "ingress" && coversTcp && portInRanges(rule.ports, SSH_PORT) && unsafeSources.length > 0)
      push(out, "warning", "ssh-exposed", rule.line,
        `"${rule.text}" in VLAN ${vlan.name} opens SSH (${SSH_PORT}/tcp${rule.ports ? ` within ${formatRanges(rule.ports)}` : ""}) to ${unsafeSources.map((s) => s.label).join(", ")}, more than the admin network`);
  }
}

function checkIngressTargets(vlan: ResolvedVlan, out: Diagnostic[]): void {
  for (const rule of vlan.ingress) {
    if (rule.toCidrs === null) continue;
    if (!rule.toCidrs.every((c) => cidrContainsCidr(vlan.subnet, c)))
      push(out, "error", "rule-target-outside", rule.line,
        `"${rule.text}" in VLAN ${vlan.name} governs connections into the VLAN, but its "to" lies outside ${formatCidr(vlan.subnet)}`);
  }
}

/**
 * Checks a resolved policy: VLAN ids (1-4094, unique), names, overlapping subnets, ingress targets,
 * shadowed rules, a final deny, and security findings (plaintext services, `allow: all` from a
 * non-management network, SSH open beyond the admin network). Returns diagnostics in file order.
 */
export function validateResolvedPolicy(policy: ResolvedPolicy): Diagnostic[] {
  const out: Diagnostic[] = [];
  checkIdsAndNames(policy, out);
  checkOverlaps(policy, out);
  for (const vlan of policy.vlans) {
    checkIngressTargets(vlan, out);
    checkShadowing(vlan, out);
    checkFinalDeny(vlan, out);
    checkFindings(vlan, out);
  }
  return out;
}
