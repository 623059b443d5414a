/**
 * Policy lint: finds allow rules that grant more than a device (or operator) is likely meant to have.
 * It reports; it never changes anything.
 */
import { type RoleDefinition, isDeviceAction } from "./model.js";
import { type FilterTemplate, hasDeviceVariable, parseFilterTemplate } from "./resource-template.js";

export type LintSeverity = "high" | "medium" | "low";

export type LintCode =
  /** The filter has no literal or variable level before `#`: it matches every (non-`$`) topic. */
  | "matches-everything"
  /** Only `+` levels: every topic of that depth. */
  | "wildcard-only"
  /** The filter reaches `$`-topics such as `$SYS`. */
  | "sys-topic"
  /** No `${device.id}`/`${cert.cn}` in a rule of a role several devices hold: they share (and can spoof) the topic. */
  | "shared-topic"
  /** A role other than the built-in admin grants every operator permission. */
  | "operator-wildcard";

export interface LintFinding {
  severity: LintSeverity;
  code: LintCode;
  role: string;
  /** Index of the rule inside the role. */
  index: number;
  rule: string;
  message: string;
}

export interface LintOptions {
  /**
   * How many devices hold each role (direct plus through groups). Without it, every role is treated as
   * possibly shared and `shared-topic` findings are reported as low.
   */
  holders?: ReadonlyMap<string, number>;
  /** A role held by at least this many devices is shared. Default 2. */
  sharedThreshold?: number;
}

function anchored(template: FilterTemplate): boolean {
  for (const level of template.levels) {
    if (level.kind === "literal" || level.kind === "template") return true;
  }
  return false;
}

const SEVERITY_ORDER: Record<LintSeverity, number> = { high: 0, medium: 1, low: 2 };

/** Lints roles; findings are sorted by severity, then role, then rule. */
export function lintPolicy(roles: readonly RoleDefinition[], options: LintOptions = {}): LintFinding[] {
  const threshold = options.sharedThreshold ?? 2;
  const findings: LintFinding[] = [];
  for (const role of roles) {
    role.rules.forEach((rule, index) => {
      if (rule.effect !== "allow") return;
      const text = `${rule.action}:${rule.resource}`;
      const add = (severity: LintSeverity, code: LintCode, message: string) =>
        findings.push({ severity, code, role: role.name, index, rule: text, message });
      if (!isDeviceAction(rule.action)) {
        if ((rule.action === "*" || rule.action === "*:*") && !(role.builtin === true && role.name === "admin"))
          add("medium", "operator-wildcard", `Role '${role.name}' grants every operator permission; prefer 'resource:verb' rules`);
        return;
      }
      let template: FilterTemplate;
      try {
        template = parseFilterTemplate(rule.resource);
      } catch {
        return; // invalid rules are rejected on write; lint does not repeat that check
      }
      if (!anchored(template)) {
        if (template.levels.some((level) => level.kind === "hash"))
          add("high", "matches-everything", `'${text}' matches every topic; anchor it, e.g. 'devices/\${device.id}/…'`);
        else add("medium", "wildcard-only", `'${text}' matches every topic ${template.levels.length} level(s) deep`);
      }
      const head = template.levels[0]!;
      if (head.kind === "literal" && head.value.startsWith("$"))
        add("high", "sys-topic", `'${text}' reaches broker-internal '${head.value}' topics`);
      if (!hasDeviceVariable(template) && anchored(template)) {
        const held = options.holders?.get(role.name);
        if (held === undefined)
          add("low", "shared-topic", `'${text}' has no \${device.id} or \${cert.cn}: every device holding '${role.name}' shares it`);
        else if (held >= threshold)
          add(
            rule.action === "publish" ? "medium" : "low",
            "shared-topic",
            `'${text}' has no \${device.id} or \${cert.cn} and ${held} devices hold '${role.name}': they share ${rule.action === "publish" ? "and can spoof " : ""}this topic`,
          );
      }
    });
  }
  return findings.sort(
    (a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || a.role.localeCompare(b.role) || a.index - b.index,
  );
}
