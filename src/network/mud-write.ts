import { Document, isMap, isScalar, isSeq, parseDocument, type YAMLMap } from "yaml";
import { MoatError } from "../errors.js";
import type { MudImport, MudRule } from "./mud.js";
import { analyzePolicy } from "./policy-load.js";

function ruleObject(rule: MudRule): Record<string, unknown> {
  const out: Record<string, unknown> = { action: rule.action, proto: rule.proto };
  if (rule.ports !== null) out.ports = rule.ports.map((r) => (r.from === r.to ? r.from : `${r.from}-${r.to}`));
  if (rule.from !== null) out.from = rule.from;
  if (rule.to !== null) out.to = rule.to;
  out.comment = rule.comment;
  return out;
}

function rulesNode(doc: Document, imported: MudImport) {
  const seq = doc.createNode(imported.rules.map(ruleObject));
  for (const item of seq.items) if (isMap(item)) item.flow = true;
  seq.commentBefore = ` From MUD ${imported.mudUrl} for group "${imported.group}" (moat segment mud import)`;
  return seq;
}

/**
 * The imported rules as a YAML `firewall_rules:` block in the structured form, ready to paste under
 * the group's VLAN.
 */
export function mudRulesToYaml(imported: MudImport): string {
  const doc = new Document({});
  doc.commentBefore = ` MUD rules for group "${imported.group}"${imported.systeminfo ? ` (${imported.systeminfo})` : ""}.\n Place them under the VLAN that holds the group's devices, or run with --policy to write them in.`;
  (doc.contents as YAMLMap).set("firewall_rules", rulesNode(doc, imported));
  return doc.toString({ lineWidth: 0 });
}

/**
 * Writes the imported rules into a policy as the `firewall_rules` of the VLAN named after the group
 * (replacing what was there), keeping the rest of the file and its comments. The result must validate
 * without errors (e.g. every DNS name the MUD file uses must be defined under `networks:`), otherwise
 * NETWORK_POLICY_INVALID is thrown and nothing is returned.
 */
export function writeMudIntoPolicy(policyText: string, imported: MudImport): string {
  const before = analyzePolicy(policyText);
  if (!before.valid) {
    const first = before.diagnostics.find((d) => d.severity === "error")!;
    throw new MoatError("NETWORK_POLICY_INVALID", `the policy has errors before the import: line ${first.line}: ${first.message}`);
  }
  const doc = parseDocument(policyText);
  const vlans = doc.get("vlans", true);
  const vlan = isSeq(vlans)
    ? vlans.items.find((item): item is YAMLMap => isMap(item) && isScalar(item.get("name", true)) && item.get("name") === imported.group)
    : undefined;
  if (!vlan) throw new MoatError("NETWORK_VLAN_NOT_FOUND", `the policy has no VLAN named "${imported.group}" (the group's devices live in that VLAN)`);
  vlan.set("firewall_rules", rulesNode(doc, imported));
  const text = doc.toString({ lineWidth: 0 });
  const after = analyzePolicy(text);
  if (!after.valid) {
    const errors = after.diagnostics.filter((d) => d.severity === "error");
    throw new MoatError(
      "NETWORK_POLICY_INVALID",
      `the policy would have errors after the import: ${errors.map((e) => `line ${e.line}: ${e.message}`).join("; ")}`,
      { detail: { errors } },
    );
  }
  return text;
}
