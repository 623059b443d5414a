/**
 * Response playbooks: which actions answer which detection rule. Written in YAML, validated here
 * (strictly: an unknown key is an error, so a typo never silently turns a safeguard off) and stored
 * as the parsed definition plus the text as applied.
 *
 *   name: probing-quarantine
 *   rule: topic-probing          # a rule name, or "*" for every rule
 *   mode: enforce                # or dry-run: record what would be done, do nothing
 *   actions: [quarantine, notify]
 *   notify: [soc-webhook]        # optional: targets for the notify action (default: all)
 *   rateLimit: { max: 5, window: 10m }
 *   banFor: 1h                   # ban-range only: how long (default 1h)
 */
import { parse as parseYaml } from "yaml";
import { MoatError } from "../errors.js";
import { parseDuration } from "../lib/duration.js";
import { ACTIONS, type ActionName } from "./ports.js";

export interface PlaybookDefinition {
  name: string;
  /** The detection rule it answers, or `*`. */
  rule: string;
  mode: "enforce" | "dry-run";
  actions: ActionName[];
  /** Targets of the notify action; empty means every target. */
  notify: string[];
  rateLimit: { max: number; windowMs: number };
  /** How long a ban-range action bans; null: until undone. */
  banForMs: number | null;
}

export const PLAYBOOK_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const RULE_NAME = /^(\*|[a-z0-9][a-z0-9._-]{0,63})$/;
const KEYS = new Set(["name", "rule", "mode", "actions", "notify", "rateLimit", "banFor", "description"]);
/** The cap when a playbook names none: a bad rule can act on at most this many subjects per window. */
export const DEFAULT_RATE_LIMIT = { max: 10, windowMs: 10 * 60_000 } as const;
const MAX_SOURCE_BYTES = 16 * 1024;

function invalid(message: string, detail?: Record<string, unknown>): MoatError {
  return new MoatError("PLAYBOOK_INVALID", message, detail ? { detail } : {});
}

/** Parses and validates one playbook document. */
export function parsePlaybook(source: string): PlaybookDefinition {
  if (Buffer.byteLength(source) > MAX_SOURCE_BYTES) throw invalid(`a playbook is at most ${MAX_SOURCE_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = parseYaml(source, { maxAliasCount: 0 });
  } catch (error) {
    throw invalid(`the playbook is not valid YAML: ${(error as Error).message.split("\n")[0]}`);
  }
  return checkPlaybook(doc);
}

/** Validates a playbook given as a value (YAML already parsed, or JSON from the API). */
export function checkPlaybook(doc: unknown): PlaybookDefinition {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw invalid("a playbook is a mapping with name, rule and actions");
  const fields = doc as Record<string, unknown>;
  for (const key of Object.keys(fields)) if (!KEYS.has(key)) throw invalid(`unknown playbook key ${JSON.stringify(key)} (allowed: ${[...KEYS].join(", ")})`, { key });
  const { name, rule } = fields;
  if (typeof name !== "string" || !PLAYBOOK_NAME.test(name)) throw invalid(`name ${JSON.stringify(name)} is not 1-64 of a-z 0-9 . _ - (starting with a letter or digit)`);
  if (typeof rule !== "string" || !RULE_NAME.test(rule)) throw invalid(`rule ${JSON.stringify(rule)} is not a rule name or "*"`);
  const mode = fields.mode ?? "enforce";
  if (mode !== "enforce" && mode !== "dry-run") throw invalid(`mode ${JSON.stringify(mode)} is not enforce or dry-run`);
  const actions = fields.actions;
  if (!Array.isArray(actions) || actions.length === 0 || actions.length > ACTIONS.length) throw invalid(`actions must list 1 to ${ACTIONS.length} of ${ACTIONS.join(", ")}`);
  for (const action of actions) if (!(ACTIONS as readonly unknown[]).includes(action)) throw invalid(`action ${JSON.stringify(action)} is not one of ${ACTIONS.join(", ")}`);
  if (new Set(actions).size !== actions.length) throw invalid("an action is listed twice");
  const notify = fields.notify ?? [];
  if (!Array.isArray(notify) || notify.length > 32 || !notify.every((t) => typeof t === "string" && TARGET_NAME.test(t)))
    throw invalid("notify must list at most 32 target names");
  const rateLimit = fields.rateLimit ?? { max: DEFAULT_RATE_LIMIT.max, window: "10m" };
  if (rateLimit === null || typeof rateLimit !== "object" || Array.isArray(rateLimit)) throw invalid("rateLimit is { max: N, window: 10m }");
  const { max, window, ...rest } = rateLimit as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw invalid(`unknown rateLimit key ${JSON.stringify(Object.keys(rest)[0])}`);
  if (!Number.isSafeInteger(max) || (max as number) < 1 || (max as number) > 10_000) throw invalid("rateLimit.max must be a whole number from 1 to 10000");
  const windowMs = parseDuration(String(window ?? "10m"), "rateLimit.window");
  const banFor = fields.banFor;
  const banForMs = banFor === undefined ? 3_600_000 : banFor === "forever" ? null : parseDuration(String(banFor), "banFor");
  if (fields.description !== undefined && (typeof fields.description !== "string" || fields.description.length > 500)) throw invalid("description is text of at most 500 characters");
  return { name, rule, mode, actions: actions as ActionName[], notify: notify as string[], rateLimit: { max: max as number, windowMs }, banForMs };
}

/** Notification target names share the playbook name rule. */
export const TARGET_NAME = PLAYBOOK_NAME;
