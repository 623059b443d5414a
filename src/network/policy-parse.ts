import { LineCounter, isMap, isScalar, isSeq, parseDocument, visit, type Node, type YAMLMap } from "yaml";
import { parseCidr, type Cidr } from "./address.js";
import type { Diagnostic, NamedNetwork, PeerRef, Policy, Rule, Vlan } from "./policy-model.js";
import { completeService, parsePortItem, parseShortRule, type RuleParts } from "./short-rule.js";
import { formatRanges, type PortRange, type Proto } from "./services.js";

/** Largest policy file read (a 10,000-rule policy is about 0.6 MiB). */
export const MAX_POLICY_BYTES = 8 * 1024 * 1024;

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;
const MANAGEMENT_NAME = /admin|mgmt|management/i;

interface Context {
  readonly lines: LineCounter;
  readonly diagnostics: Diagnostic[];
}

function lineOf(ctx: Context, node: Node | null | undefined): number {
  const offset = node?.range?.[0];
  return offset === undefined ? 0 : ctx.lines.linePos(offset).line;
}

function error(ctx: Context, kind: string, line: number, message: string): void {
  ctx.diagnostics.push({ severity: "error", kind, line, message });
}

function scalarString(node: unknown): string | null {
  if (!isScalar(node)) return null;
  return typeof node.value === "string" ? node.value : typeof node.value === "number" ? String(node.value) : null;
}

/** Keys of a mapping that are not in `allowed` are errors: a typo such as `firewal_rules` must not drop rules silently. */
function checkKeys(ctx: Context, map: YAMLMap, allowed: readonly string[], where: string): void {
  for (const pair of map.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : null;
    if (key === null || !allowed.includes(key))
      error(ctx, "unknown-key", lineOf(ctx, pair.key as Node), `unknown key "${key ?? "?"}" in ${where} (allowed: ${allowed.join(", ")})`);
  }
}

function get(map: YAMLMap, key: string): Node | undefined {
  return map.get(key, true) as Node | undefined;
}

function readBoolean(ctx: Context, map: YAMLMap, key: string): boolean | null {
  const node = get(map, key);
  if (node === undefined) return null;
  if (isScalar(node) && typeof node.value === "boolean") return node.value;
  error(ctx, "type", lineOf(ctx, node), `"${key}" must be true or false`);
  return null;
}

function readCidr(ctx: Context, node: Node | undefined, where: string): { cidr: Cidr; text: string } | null {
  const text = scalarString(node);
  if (text === null) {
    error(ctx, "subnet-invalid", lineOf(ctx, node), `${where} must be an IPv4 network such as 192.168.10.0/24`);
    return null;
  }
  const parsed = parseCidr(text.trim());
  if (!parsed.ok) {
    error(ctx, "subnet-invalid", lineOf(ctx, node), `${where} "${text}": ${parsed.reason}`);
    return null;
  }
  return { cidr: parsed.cidr, text: text.trim() };
}

function readNetworks(ctx: Context, node: Node | undefined): Map<string, NamedNetwork> {
  const networks = new Map<string, NamedNetwork>();
  if (node === undefined || (isScalar(node) && node.value === null)) return networks;
  if (!isMap(node)) {
    error(ctx, "type", lineOf(ctx, node), `"networks" must map names to networks, e.g. admin_network: 10.0.0.0/24`);
    return networks;
  }
  for (const pair of node.items) {
    const keyNode = pair.key as Node;
    const name = scalarString(keyNode);
    const line = lineOf(ctx, keyNode);
    if (name === null || !NAME.test(name)) {
      error(ctx, "name-invalid", line, `network name "${name ?? "?"}" must start with a letter and use letters, digits, "_", "-" or "." (at most 63)`);
      continue;
    }
    const value = pair.value as Node | null;
    const cidrs: Cidr[] = [];
    let management: boolean | null = null;
    const where = `network "${name}"`;
    if (isSeq(value)) {
      for (const item of value.items) {
        const read = readCidr(ctx, item as Node, where);
        if (read) cidrs.push(read.cidr);
      }
    } else if (isMap(value)) {
      checkKeys(ctx, value, ["subnet", "subnets", "management", "description"], where);
      management = readBoolean(ctx, value, "management");
      const one = get(value, "subnet");
      const many = get(value, "subnets");
      if (one !== undefined) {
        const read = readCidr(ctx, one, where);
        if (read) cidrs.push(read.cidr);
      }
      if (isSeq(many)) {
        for (const item of many.items) {
          const read = readCidr(ctx, item as Node, where);
          if (read) cidrs.push(read.cidr);
        }
      } else if (many !== undefined) error(ctx, "type", lineOf(ctx, many), `${where}: "subnets" must be a list`);
      if (one === undefined && many === undefined) error(ctx, "subnet-missing", line, `${where} has no "subnet" or "subnets"`);
    } else {
      const read = readCidr(ctx, value ?? undefined, where);
      if (read) cidrs.push(read.cidr);
    }
    if (cidrs.length === 0) continue;
    networks.set(name, { name, cidrs, management: management ?? MANAGEMENT_NAME.test(name), line });
  }
  return networks;
}

function readPeers(ctx: Context, node: Node | undefined, key: string, line: number): PeerRef[] | null | "bad" {
  if (node === undefined) return null;
  const items = isSeq(node) ? (node.items as Node[]) : [node];
  const peers: PeerRef[] = [];
  for (const item of items) {
    const text = scalarString(item);
    if (text === null || text.trim() === "") {
      error(ctx, "type", lineOf(ctx, item) || line, `"${key}" must be a network name, a VLAN name, an address/CIDR or "any"`);
      return "bad";
    }
    peers.push({ text: text.trim(), line: lineOf(ctx, item) || line });
  }
  if (peers.length === 0) {
    error(ctx, "type", line, `"${key}" is an empty list`);
    return "bad";
  }
  return peers;
}

const STRUCTURED_KEYS = ["action", "service", "ports", "proto", "from", "to", "comment"];

/** The explicit form `{action, service, ports, proto, from, to}` for what the short form cannot say. */
function readStructuredRule(ctx: Context, map: YAMLMap, line: number): { action: "allow" | "deny"; parts: RuleParts; text: string } | null {
  checkKeys(ctx, map, STRUCTURED_KEYS, "a firewall rule");
  const action = scalarString(get(map, "action"));
  if (action !== "allow" && action !== "deny") {
    error(ctx, "rule-invalid", line, `a structured rule needs "action: allow" or "action: deny"`);
    return null;
  }
  const serviceNode = get(map, "service");
  const service = serviceNode === undefined ? null : scalarString(serviceNode);
  if (serviceNode !== undefined && service === null) {
    error(ctx, "rule-invalid", lineOf(ctx, serviceNode), `"service" must be a name`);
    return null;
  }
  const protoNode = get(map, "proto");
  let proto: Proto | null = null;
  if (protoNode !== undefined) {
    const text = scalarString(protoNode);
    if (text !== "tcp" && text !== "udp" && text !== "any") {
      error(ctx, "rule-invalid", lineOf(ctx, protoNode), `"proto" must be tcp, udp or any`);
      return null;
    }
    proto = text;
  }
  const portsNode = get(map, "ports");
  let ports: PortRange[] | null = null;
  if (portsNode !== undefined) {
    const items = isSeq(portsNode) ? (portsNode.items as Node[]) : [portsNode];
    ports = [];
    for (const item of items) {
      const text = scalarString(item);
      const port = text === null ? `"ports" items must be numbers or "from-to" ranges` : parsePortItem(text);
      if (typeof port === "string") {
        error(ctx, "port-invalid", lineOf(ctx, item) || line, port);
        return null;
      }
      ports.push(port);
    }
    if (ports.length === 0) {
      error(ctx, "port-invalid", line, `"ports" is an empty list; leave it out to mean every port`);
      return null;
    }
  }
  const everything = service !== null && /^(all|any)$/i.test(service);
  if (everything && ports !== null) {
    error(ctx, "rule-invalid", line, `service "${service}" means every port; it takes no ports`);
    return null;
  }
  const completed = completeService(everything ? null : service, ports, proto);
  if (!completed.ok) {
    error(ctx, "rule-invalid", line, completed.reason);
    return null;
  }
  const from = readPeers(ctx, get(map, "from"), "from", line);
  const to = readPeers(ctx, get(map, "to"), "to", line);
  if (from === "bad" || to === "bad") return null;
  completed.parts.from = from === null ? null : from.map((p) => p.text);
  completed.parts.to = to === null ? null : to.map((p) => p.text);
  const text = [
    `${action}:`,
    completed.parts.service ?? (completed.parts.ports === null ? "all" : ""),
    completed.parts.ports ? `(${formatRanges(completed.parts.ports)})` : "",
    proto !== null ? `proto ${proto}` : "",
    from ? `from ${from.map((p) => p.text).join(",")}` : "",
    to ? `to ${to.map((p) => p.text).join(",")}` : "",
  ]
    .filter((part) => part !== "")
    .join(" ");
  return { action, parts: completed.parts, text };
}

function readRule(ctx: Context, node: Node, index: number): Rule | null {
  const line = lineOf(ctx, node);
  if (!isMap(node)) {
    error(ctx, "rule-invalid", line, `a firewall rule must be "- allow: ..." / "- deny: ..." or a mapping with "action"`);
    return null;
  }
  let action: "allow" | "deny";
  let parts: RuleParts;
  let text: string;
  if (node.has("action")) {
    const read = readStructuredRule(ctx, node, line);
    if (!read) return null;
    ({ action, parts, text } = read);
  } else {
    if (node.items.length !== 1) {
      error(ctx, "rule-invalid", line, `a short-form rule has exactly one key, "allow" or "deny"`);
      return null;
    }
    const pair = node.items[0]!;
    const key = scalarString(pair.key);
    if (key !== "allow" && key !== "deny") {
      error(ctx, "rule-invalid", line, `unknown rule key "${key ?? "?"}": use "allow", "deny" or the structured form with "action"`);
      return null;
    }
    const value = scalarString(pair.value);
    if (value === null) {
      error(ctx, "rule-invalid", line, `"${key}" needs a text such as "mqtt (1883, 8883)" or "all"`);
      return null;
    }
    const parsed = parseShortRule(value);
    if (!parsed.ok) {
      error(ctx, "rule-invalid", line, parsed.reason);
      return null;
    }
    action = key;
    parts = parsed.parts;
    text = `${key}: ${value.trim()}`;
  }
  return {
    index,
    action,
    direction: parts.from === null ? "egress" : "ingress",
    service: parts.service,
    proto: parts.proto,
    ports: parts.ports,
    from: parts.from === null ? null : parts.from.map((t) => ({ text: t, line })),
    to: parts.to === null ? null : parts.to.map((t) => ({ text: t, line })),
    text,
    line,
  };
}

function readVlan(ctx: Context, node: Node): Vlan | null {
  const line = lineOf(ctx, node);
  if (!isMap(node)) {
    error(ctx, "type", line, `each VLAN must be a mapping with id, name, subnet and firewall_rules`);
    return null;
  }
  checkKeys(ctx, node, ["id", "name", "subnet", "firewall_rules", "management", "description"], "a VLAN");
  const idNode = get(node, "id");
  const id = isScalar(idNode) && typeof idNode.value === "number" && Number.isInteger(idNode.value) ? idNode.value : null;
  if (id === null) error(ctx, "vlan-id-invalid", lineOf(ctx, idNode) || line, `VLAN "id" must be an integer (IEEE 802.1Q: 1-4094)`);
  const nameNode = get(node, "name");
  const name = scalarString(nameNode);
  const nameOk = name !== null && NAME.test(name);
  if (!nameOk)
    error(ctx, "name-invalid", lineOf(ctx, nameNode) || line, `VLAN "name" must start with a letter and use letters, digits, "_", "-" or "." (at most 63)`);
  const subnetNode = get(node, "subnet");
  const subnet = subnetNode === undefined ? null : readCidr(ctx, subnetNode, `VLAN ${name ?? id ?? "?"} subnet`);
  if (subnetNode === undefined) error(ctx, "subnet-missing", line, `VLAN ${name ?? id ?? "?"} has no "subnet"`);
  const management = readBoolean(ctx, node, "management");
  const rulesNode = get(node, "firewall_rules");
  const rules: Rule[] = [];
  if (rulesNode !== undefined && !(isScalar(rulesNode) && rulesNode.value === null)) {
    if (!isSeq(rulesNode)) error(ctx, "type", lineOf(ctx, rulesNode), `"firewall_rules" must be a list`);
    else
      rulesNode.items.forEach((item, i) => {
        const rule = readRule(ctx, item as Node, i + 1);
        if (rule) rules.push(rule);
      });
  }
  if (id === null || !nameOk || subnet === null) return null;
  return { id, name: name!, subnet: subnet.cidr, subnetText: subnet.text, rules, line, management: management ?? MANAGEMENT_NAME.test(name!) };
}

/**
 * Reads a segmentation policy (the seed's YAML plus `networks:` and the structured rule form).
 * Never throws on bad input: every problem becomes an error diagnostic with its line, and whatever
 * could be read is returned so validation can report more at once.
 */
export function parsePolicyText(text: string): { policy: Policy; diagnostics: Diagnostic[] } {
  const empty: Policy = { vlans: [], networks: new Map() };
  const ctx: Context = { lines: new LineCounter(), diagnostics: [] };
  if (Buffer.byteLength(text, "utf8") > MAX_POLICY_BYTES) {
    error(ctx, "file-too-large", 0, `the policy is larger than ${MAX_POLICY_BYTES} bytes`);
    return { policy: empty, diagnostics: ctx.diagnostics };
  }
  const doc = parseDocument(text, { lineCounter: ctx.lines, uniqueKeys: true, prettyErrors: false, version: "1.2" });
  for (const e of doc.errors) error(ctx, "yaml-syntax", e.linePos?.[0]?.line ?? ctx.lines.linePos(e.pos[0]).line, `YAML: ${e.message.split("\n")[0]}`);
  if (doc.errors.length > 0) return { policy: empty, diagnostics: ctx.diagnostics };
  // Anchors and aliases are refused: they can expand a small file into a huge one and hide what a rule says.
  visit(doc, {
    Alias: (_key, node) => {
      error(ctx, "yaml-alias", lineOf(ctx, node as unknown as Node), `YAML aliases (*name) are not allowed in a policy`);
    },
  });
  if (hasAnyError(ctx)) return { policy: empty, diagnostics: ctx.diagnostics };
  const root = doc.contents as Node | null;
  if (!isMap(root)) {
    error(ctx, "type", lineOf(ctx, root), `the policy must be a mapping with a "vlans" list`);
    return { policy: empty, diagnostics: ctx.diagnostics };
  }
  checkKeys(ctx, root, ["vlans", "networks", "version"], "the policy");
  const networks = readNetworks(ctx, get(root, "networks"));
  const vlansNode = get(root, "vlans");
  const vlans: Vlan[] = [];
  if (!isSeq(vlansNode)) error(ctx, "type", lineOf(ctx, vlansNode) || 1, `the policy needs a "vlans" list`);
  else
    for (const item of vlansNode.items) {
      const vlan = readVlan(ctx, item as Node);
      if (vlan) vlans.push(vlan);
    }
  return { policy: { vlans, networks }, diagnostics: ctx.diagnostics };
}

function hasAnyError(ctx: Context): boolean {
  return ctx.diagnostics.some((d) => d.severity === "error");
}
