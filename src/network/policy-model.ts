import type { Cidr } from "./address.js";
import type { PortRange, Proto } from "./services.js";

/** A finding about a policy file, tied to the line it comes from (1-based; 0 when there is no line). */
export interface Diagnostic {
  readonly severity: "error" | "warning";
  /** Stable, kebab-case kind: `vlan-id-range`, `subnet-overlap`, `rule-shadowed`, `plaintext-service`, … */
  readonly kind: string;
  readonly message: string;
  readonly line: number;
}

/** `from`/`to` as written: a named network, a VLAN name, a CIDR/address literal, or `any`. */
export interface PeerRef {
  readonly text: string;
  readonly line: number;
}

/** A peer resolved to address blocks. `management` marks admin/management networks and VLANs. */
export interface ResolvedPeer {
  readonly text: string;
  readonly kind: "any" | "vlan" | "network" | "cidr";
  readonly cidrs: readonly Cidr[];
  readonly management: boolean;
}

export type Action = "allow" | "deny";

/**
 * One firewall rule. A rule with `from` governs connections into its VLAN (ingress); a rule without
 * `from` governs connections its VLAN's hosts open (egress), to `to` or anywhere.
 */
export interface Rule {
  /** 1-based position in the VLAN's `firewall_rules`. */
  readonly index: number;
  readonly action: Action;
  readonly direction: "egress" | "ingress";
  /** Service label as written (`mqtt`), or null. */
  readonly service: string | null;
  readonly proto: Proto;
  /** null = every port (and, with proto `any`, every protocol). */
  readonly ports: readonly PortRange[] | null;
  readonly from: readonly PeerRef[] | null;
  readonly to: readonly PeerRef[] | null;
  /** The rule as written, for messages and nft comments. */
  readonly text: string;
  readonly line: number;
}

/** A rule whose `from`/`to` are resolved to address blocks (null = not restricted). */
export interface ResolvedRule extends Rule {
  readonly vlan: Vlan;
  readonly fromPeers: readonly ResolvedPeer[] | null;
  readonly toPeers: readonly ResolvedPeer[] | null;
  readonly fromCidrs: readonly Cidr[] | null;
  readonly toCidrs: readonly Cidr[] | null;
}

/** A VLAN with its rules resolved and split by direction (order kept: first match wins). */
export interface ResolvedVlan extends Vlan {
  readonly resolvedRules: readonly ResolvedRule[];
  readonly egress: readonly ResolvedRule[];
  readonly ingress: readonly ResolvedRule[];
}

/** A policy ready for simulation and compilation (it validated without errors). */
export interface ResolvedPolicy {
  readonly vlans: readonly ResolvedVlan[];
  readonly networks: ReadonlyMap<string, NamedNetwork>;
}

export interface Vlan {
  readonly id: number;
  readonly name: string;
  readonly subnet: Cidr;
  readonly subnetText: string;
  readonly rules: readonly Rule[];
  readonly line: number;
  /** A management VLAN may be the source of `allow: all` without a finding. */
  readonly management: boolean;
}

export interface NamedNetwork {
  readonly name: string;
  readonly cidrs: readonly Cidr[];
  readonly management: boolean;
  readonly line: number;
}

/** A parsed segmentation policy (the seed's `vlans:` plus `networks:`). */
export interface Policy {
  readonly vlans: readonly Vlan[];
  readonly networks: ReadonlyMap<string, NamedNetwork>;
}

/** Result of reading a policy file: what could be parsed plus every finding. */
export interface PolicyReport {
  readonly policy: Policy;
  readonly diagnostics: readonly Diagnostic[];
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === "error");
}
