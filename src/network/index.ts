/**
 * Network segmentation: the seed's VLAN policy (YAML) and RFC 8520 MUD profiles, validated,
 * simulated, shown as a reachability matrix, compiled to nftables, and linked to the device inventory.
 * A pure leaf: no store, no servers.
 */
export { formatCidr, formatIpv4, parseCidr, parseIpv4, type Cidr } from "./address.js";
export { checkDevicePlacement, parseInventoryJson, VLAN_ATTRIBUTE, type DevicePlacement, type InventoryDevice, type PlacementStatus } from "./inventory.js";
export { buildMatrix, describeCell, formatMatrix, formatMatrixGrid, type MatrixCell, type MatrixEndpoint, type ReachabilityMatrix } from "./matrix.js";
export { importMud, MAX_MUD_BYTES, type MudImport, type MudNote, type MudRule } from "./mud.js";
export { mudRulesToYaml, writeMudIntoPolicy } from "./mud-write.js";
export { compileNftables, NFT_TABLE } from "./nftables.js";
export { analyzePolicy, loadPolicy, type PolicyAnalysis } from "./policy-load.js";
export { hasErrors, type Diagnostic, type NamedNetwork, type Policy, type ResolvedPolicy, type ResolvedRule, type ResolvedVlan, type Rule, type Vlan } from "./policy-model.js";
export { MAX_POLICY_BYTES } from "./policy-parse.js";
export { explainDecision, FlowSimulator, parseFlow, type DecidingRule, type DecisionStep, type Flow, type FlowDecision } from "./simulate.js";
export { KNOWN_SERVICES, PLAINTEXT_PORTS } from "./services.js";
export { readTextFile, writeFileAtomic } from "./files.js";
