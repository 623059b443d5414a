/**
 * The stored rule set: `moat detect rules apply FILE` replaces it as a whole (the file is the truth),
 * with a `detect.rules` change-feed row so every running server reloads it, and a security event.
 */
import { MoatError } from "../errors.js";
import type { DetectStore } from "./ports.js";
import { checkRule, effectiveRules, isBuiltinRule, parseRulesYaml, type Rule } from "./rules.js";

export interface RuleView extends Record<string, unknown> {
  name: string;
  kind: Rule["kind"];
  enabled: boolean;
  severity: Rule["severity"];
  /** `builtin`, `builtin (overridden)` or `custom`. */
  origin: "builtin" | "overridden" | "custom";
}

export class DetectRuleService {
  /** The rules in force as last read; the built-ins until the store has been read. */
  private inForce: Rule[] = effectiveRules([]);

  constructor(private readonly store: DetectStore) {}

  /**
   * A rule's default actions as last read (respond's executor asks synchronously for each alert);
   * empty for a rule not in force.
   */
  defaultActionsOf(name: string): readonly string[] {
    return this.inForce.find((r) => r.name === name)?.defaultActions ?? [];
  }

  /** The stored rules (built-in overrides and custom rules), checked again as they are read. */
  async stored(): Promise<Rule[]> {
    const rows = await this.store.rules.list();
    const out: Rule[] = [];
    rows.forEach((row, i) => {
      try {
        out.push(checkRule(row.definition, i));
      } catch {
        // A stored rule this version cannot read is skipped, never guessed at (like an unknown feed row).
      }
    });
    return out;
  }

  /** Every rule in force: the built-ins (as overridden) and the custom rules. */
  async effective(): Promise<Rule[]> {
    this.inForce = effectiveRules(await this.stored());
    return this.inForce;
  }

  /** One rule in force by name (respond reads `defaultActions` here). */
  async get(name: string): Promise<Rule> {
    const rule = (await this.effective()).find((r) => r.name === name);
    if (!rule) throw new MoatError("DETECT_RULE_NOT_FOUND", `no detection rule ${JSON.stringify(name.slice(0, 64))}`);
    return rule;
  }

  async list(): Promise<(Rule & { origin: RuleView["origin"] })[]> {
    const stored = new Set((await this.stored()).map((r) => r.name));
    return (await this.effective()).map((rule) => ({ ...rule, origin: !isBuiltinRule(rule.name) ? "custom" : stored.has(rule.name) ? "overridden" : "builtin" }));
  }

  /** Checks a rules file without storing it. */
  validate(text: string): Rule[] {
    return parseRulesYaml(text);
  }

  /** Replaces the stored set with the file's rules; nothing is stored when any rule is invalid. */
  async apply(text: string, actor: string): Promise<Rule[]> {
    const rules = parseRulesYaml(text);
    const at = new Date().toISOString();
    await this.store.transact(async (uow) => {
      const before = (await uow.rules.list()).map((r) => r.name);
      await uow.rules.replaceAll(rules.map((rule) => ({ name: rule.name, definition: rule, updatedAt: at, updatedBy: actor })));
      const names = rules.map((r) => r.name);
      // Detection rules decide what raises alerts (and what playbooks act on): a change is a policy change.
      await uow.events.append({ type: "detect.rules_applied", severity: "medium", actor, subject: "detect-rules", data: { rules: names, removed: before.filter((n) => !names.includes(n)) } });
      await uow.changes.append({ kind: "detect.rules", subject: "detect-rules", data: { rules: names.length } });
    });
    this.inForce = effectiveRules(rules);
    return this.inForce;
  }
}
