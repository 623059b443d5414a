import { MoatError } from "../errors.js";
import { cidrListContainsAddress, formatIpv4, lastAddress, parseIpv4 } from "./address.js";
import type { ResolvedPolicy, ResolvedRule, ResolvedVlan } from "./policy-model.js";
import { portInRanges } from "./services.js";

/** A connection attempt: who opens it, to where, on which port and protocol. */
export interface Flow {
  readonly src: number;
  readonly dst: number;
  readonly port: number;
  readonly proto: "tcp" | "udp";
}

/** The rule that decided one step, or null for the implicit default deny. */
export interface DecidingRule {
  readonly vlanId: number;
  readonly vlan: string;
  readonly index: number;
  readonly line: number;
  readonly text: string;
}

export interface DecisionStep {
  readonly vlan: string;
  readonly vlanId: number;
  readonly direction: "egress" | "ingress";
  readonly verdict: "allow" | "deny";
  readonly rule: DecidingRule | null;
}

export interface FlowDecision {
  readonly decision: "allow" | "deny";
  /** The rule that settled the outcome: the denying rule, or the last allowing one; null = default deny. */
  readonly decidingRule: DecidingRule | null;
  readonly steps: readonly DecisionStep[];
  readonly srcVlan: string | null;
  readonly dstVlan: string | null;
  readonly reason: string;
}

/** Parses the CLI's flow arguments (NETWORK_FLOW_INVALID on bad input). */
export function parseFlow(input: { from: string; to: string; port: string | number; proto?: string }): Flow {
  const src = parseIpv4(String(input.from).trim());
  const dst = parseIpv4(String(input.to).trim());
  if (src === null) throw new MoatError("NETWORK_FLOW_INVALID", `--from "${input.from}" is not an IPv4 address`);
  if (dst === null) throw new MoatError("NETWORK_FLOW_INVALID", `--to "${input.to}" is not an IPv4 address`);
  const portText = String(input.port).trim();
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new MoatError("NETWORK_FLOW_INVALID", `--port "${input.port}" is not a port 1-65535`);
  const proto = (input.proto ?? "tcp").toLowerCase();
  if (proto !== "tcp" && proto !== "udp") throw new MoatError("NETWORK_FLOW_INVALID", `--proto "${input.proto}" must be tcp or udp`);
  return { src, dst, port, proto };
}

function ruleMatches(rule: ResolvedRule, flow: Flow): boolean {
  if (rule.proto !== "any" && rule.proto !== flow.proto) return false;
  if (!portInRanges(rule.ports, flow.port)) return false;
  if (rule.fromCidrs !== null && !cidrListContainsAddress(rule.fromCidrs, flow.src)) return false;
  return rule.toCidrs === null || cidrListContainsAddress(rule.toCidrs, flow.dst);
}

function describe(rule: ResolvedRule): DecidingRule {
  return { vlanId: rule.vlan.id, vlan: rule.vlan.name, index: rule.index, line: rule.line, text: rule.text };
}

/**
 * Decides flows the way the compiled nftables ruleset does: a flow must pass the egress rules of the
 * source's VLAN (if any) and the ingress rules of the destination's VLAN (if any); inside each list the
 * first matching rule wins and no match means deny; a flow touching no VLAN is denied. Replies to an
 * allowed connection are allowed (conntrack), so only the opening direction is decided.
 */
export class FlowSimulator {
  /** VLANs sorted by subnet start, for a binary search (valid policies have no overlaps). */
  private readonly sorted: readonly ResolvedVlan[];

  constructor(policy: ResolvedPolicy) {
    this.sorted = [...policy.vlans].sort((a, b) => a.subnet.base - b.subnet.base);
  }

  /** The VLAN whose subnet holds the address, or null. */
  vlanOf(address: number): ResolvedVlan | null {
    let low = 0;
    let high = this.sorted.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const vlan = this.sorted[mid]!;
      if (address < vlan.subnet.base) high = mid - 1;
      else if (address > lastAddress(vlan.subnet)) low = mid + 1;
      else return vlan;
    }
    return null;
  }

  decide(flow: Flow): FlowDecision {
    const srcVlan = this.vlanOf(flow.src);
    const dstVlan = this.vlanOf(flow.dst);
    const base = { srcVlan: srcVlan?.name ?? null, dstVlan: dstVlan?.name ?? null };
    if (!srcVlan && !dstVlan)
      return { ...base, decision: "deny", decidingRule: null, steps: [], reason: `neither ${formatIpv4(flow.src)} nor ${formatIpv4(flow.dst)} is in a VLAN: default deny` };
    const steps: DecisionStep[] = [];
    for (const [vlan, direction] of [[srcVlan, "egress"], [dstVlan, "ingress"]] as const) {
      if (!vlan) continue;
      const list = direction === "egress" ? vlan.egress : vlan.ingress;
      const rule = list.find((r) => ruleMatches(r, flow)) ?? null;
      const verdict = rule?.action ?? "deny";
      steps.push({ vlan: vlan.name, vlanId: vlan.id, direction, verdict, rule: rule ? describe(rule) : null });
      if (verdict === "deny") {
        const why = rule ? `rule ${rule.index} "${rule.text}" (line ${rule.line})` : `no ${direction} rule matched (default deny)`;
        return { ...base, decision: "deny", decidingRule: rule ? describe(rule) : null, steps, reason: `denied by VLAN ${vlan.name} ${direction}: ${why}` };
      }
    }
    const last = steps[steps.length - 1]!;
    const reason = steps.map((s) => `VLAN ${s.vlan} ${s.direction} rule ${s.rule!.index} "${s.rule!.text}" (line ${s.rule!.line})`).join(", then ");
    return { ...base, decision: "allow", decidingRule: last.rule, steps, reason: `allowed by ${reason}` };
  }
}
