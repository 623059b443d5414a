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
  private readonly sorted: readonly Chains[];

  constructor(policy: ResolvedPolicy) {
    const chains = (list: readonly ResolvedRule[]) => list.map((rule) => ({ rule, described: describe(rule) }));
    this.sorted = [...policy.vlans]
      .sort((a, b) => a.subnet.base - b.subnet.base)
      .map((vlan) => ({ vlan, first: vlan.subnet.base, last: lastAddress(vlan.subnet), egress: chains(vlan.egress), ingress: chains(vlan.ingress) }));
  }

  private chainsOf(address: number): Chains | null {
    let low = 0;
    let high = this.sorted.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const entry = this.sorted[mid]!;
      if (address < entry.first) high = mid - 1;
      else if (address > entry.last) low = mid + 1;
      else return entry;
    }
    return null;
  }

  /** The VLAN whose subnet holds the address, or null. */
  vlanOf(address: number): ResolvedVlan | null {
    return this.chainsOf(address)?.vlan ?? null;
  }

  decide(flow: Flow): FlowDecision {
    const srcVlan = this.chainsOf(flow.src);
    const dstVlan = this.chainsOf(flow.dst);
    const srcName = srcVlan?.vlan.name ?? null;
    const dstName = dstVlan?.vlan.name ?? null;
    if (!srcVlan && !dstVlan) return { decision: "deny", decidingRule: null, steps: [], srcVlan: srcName, dstVlan: dstName };
    const steps: DecisionStep[] = [];
    if (srcVlan) {
      const step = evaluate(srcVlan, "egress", flow);
      steps.push(step);
      if (step.verdict === "deny") return { decision: "deny", decidingRule: step.rule, steps, srcVlan: srcName, dstVlan: dstName };
    }
    if (dstVlan) {
      const step = evaluate(dstVlan, "ingress", flow);
      steps.push(step);
      if (step.verdict === "deny") return { decision: "deny", decidingRule: step.rule, steps, srcVlan: srcName, dstVlan: dstName };
    }
    return { decision: "allow", decidingRule: steps[steps.length - 1]!.rule, steps, srcVlan: srcName, dstVlan: dstName };
  }
}

/** A VLAN's address range and its rules in order, each with its description made once. */
interface Chains {
  readonly vlan: ResolvedVlan;
  readonly first: number;
  readonly last: number;
  readonly egress: readonly { rule: ResolvedRule; described: DecidingRule }[];
  readonly ingress: readonly { rule: ResolvedRule; described: DecidingRule }[];
}

function evaluate(chains: Chains, direction: "egress" | "ingress", flow: Flow): DecisionStep {
  const { vlan } = chains;
  for (const { rule, described } of chains[direction])
    if (ruleMatches(rule, flow)) return { vlan: vlan.name, vlanId: vlan.id, direction, verdict: rule.action, rule: described };
  return { vlan: vlan.name, vlanId: vlan.id, direction, verdict: "deny", rule: null };
}

/** One sentence saying why: the deciding rule with its line, or the default deny. */
export function explainDecision(decision: FlowDecision, flow: Flow): string {
  if (decision.steps.length === 0) return `neither ${formatIpv4(flow.src)} nor ${formatIpv4(flow.dst)} is in a VLAN: default deny`;
  const text = (s: DecisionStep) => `VLAN ${s.vlan} ${s.direction} rule ${s.rule!.index} "${s.rule!.text}" (line ${s.rule!.line})`;
  if (decision.decision === "allow") return `allowed by ${decision.steps.map(text).join(", then ")}`;
  const last = decision.steps[decision.steps.length - 1]!;
  return `denied by ${last.rule ? text(last) : `VLAN ${last.vlan} ${last.direction}: no rule matched (default deny)`}`;
}
