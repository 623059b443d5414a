/**
 * Policy lint: finds allow rules that grant more than a device (or operator) is likely meant to have.
 * It reports; it never changes anything.
 */
import { type RoleDefinition, isDeviceAction } from "./model.js";
import { type FilterTemplate, hasDeviceVariable, parseFilterTemplate } from "./resource-template.js";
import { filterCovers, filtersIntersect } from "./topic.js";

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
  | "operator-wildcard"
  /** An allow rule that a deny rule of the same role always overrides: it can never grant anything. */
  | "never-matches"
  /** A deny rule that overlaps no allow rule of any role: it takes nothing away (a typo, or a leftover). */
  | "deny-shadows-nothing";

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

/**
 * A filter template as a plain filter for coverage and overlap: a level with variables stays its own
 * text, so `\${device.id}` covers only itself, except in `asWildcard` mode, where it may be any value.
 */
function plainFilter(template: FilterTemplate, asWildcard: boolean): string {
  return template.levels
    .map((level, i) => {
      if (level.kind === "plus") return "+";
      if (level.kind === "hash") return "#";
      if (level.kind === "literal") return level.value;
      return asWildcard ? "+" : template.source.split("/")[i]!;
    })
    .join("/");
}

function deviceRuleTemplate(rule: { action: string; resource: string }): FilterTemplate | null {
  if (!isDeviceAction(rule.action)) return null;
  try {
    return parseFilterTemplate(rule.resource);
  } catch {
    return null;
  }
}

/** Allow rules a deny of their own role always overrides, and deny rules no allow rule of any role overlaps. */
function deadRules(roles: readonly RoleDefinition[], add: (role: RoleDefinition, index: number, severity: LintSeverity, code: LintCode, message: string) => void): void {
  const allows: { action: string; filter: string }[] = [];
  for (const role of roles)
    for (const rule of role.rules) {
      const template = rule.effect === "allow" ? deviceRuleTemplate(rule) : null;
      if (template) allows.push({ action: rule.action, filter: plainFilter(template, true) });
    }
  for (const role of roles) {
    role.rules.forEach((rule, index) => {
      const template = deviceRuleTemplate(rule);
      if (!template) return;
      const text = `${rule.action}:${rule.resource}`;
      if (rule.effect === "deny") {
        const wildcard = plainFilter(template, true);
        if (!allows.some((a) => a.action === rule.action && filtersIntersect(a.filter, wildcard)))
          add(role, index, "low", "deny-shadows-nothing", `deny '${text}' overlaps no allow rule of any role: it takes nothing away`);
        return;
      }
      const own = plainFilter(template, false);
      const shadow = role.rules.find((other) => {
        const deny = other.effect === "deny" && other.action === rule.action ? deviceRuleTemplate(other) : null;
        return deny !== null && filterCovers(plainFilter(deny, false), own);
      });
      if (shadow) add(role, index, "medium", "never-matches", `'${text}' can never grant anything: deny '${shadow.action}:${shadow.resource}' of the same role overrides every topic it matches`);
    });
  }
}

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
  deadRules(roles, (role, index, severity, code, message) => {
    const rule = role.rules[index]!;
    findings.push({ severity, code, role: role.name, index, rule: `${rule.action}:${rule.resource}`, message });
  });
  return findings.sort(
    (a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || a.role.localeCompare(b.role) || a.index - b.index,
  );
}
