/**
 * Topic filters with variables: `${device.id}`, `${device.group}`, `${device.attr.NAME}`, `${cert.cn}`.
 *
 * A substituted value must stay inside one topic level and must not be a wildcard, or a device could widen
 * its own access by choosing an attribute value (`+`, `#`, `a/b`). Such a value makes the rule not match.
 */
import { MoatError } from "../errors.js";
import type { DeviceSubject } from "./model.js";
import { topicFilterProblem } from "./topic.js";

export type VariableRef =
  | { kind: "device.id" }
  | { kind: "device.group" }
  | { kind: "cert.cn" }
  | { kind: "device.attr"; name: string };

/** One level of a parsed filter template. */
export type LevelTemplate =
  | { kind: "literal"; value: string }
  | { kind: "plus" }
  | { kind: "hash" }
  /** A level with at least one variable; parts alternate between literal text and variables. */
  | { kind: "template"; parts: ReadonlyArray<string | VariableRef> };

export interface FilterTemplate {
  source: string;
  levels: readonly LevelTemplate[];
  /** True when some level has a variable. */
  hasVariables: boolean;
}

const VARIABLE = /\$\{([^}]*)\}/g;
const ATTR_NAME = /^[A-Za-z0-9_-]{1,64}$/;

function parseVariable(body: string, source: string): VariableRef {
  if (body === "device.id") return { kind: "device.id" };
  if (body === "device.group") return { kind: "device.group" };
  if (body === "cert.cn") return { kind: "cert.cn" };
  if (body.startsWith("device.attr.")) {
    const name = body.slice("device.attr.".length);
    if (ATTR_NAME.test(name)) return { kind: "device.attr", name };
  }
  throw new MoatError(
    "POLICY_RULE_INVALID",
    `Unknown variable \${${body}} in '${source}'; use \${device.id}, \${device.group}, \${device.attr.NAME} or \${cert.cn}`,
    { detail: { resource: source, variable: body } },
  );
}

function parseLevel(level: string, source: string): LevelTemplate {
  if (level === "+") return { kind: "plus" };
  if (level === "#") return { kind: "hash" };
  if (!level.includes("${")) return { kind: "literal", value: level };
  const parts: Array<string | VariableRef> = [];
  let last = 0;
  for (const match of level.matchAll(VARIABLE)) {
    if (match.index > last) parts.push(level.slice(last, match.index));
    parts.push(parseVariable(match[1]!, source));
    last = match.index + match[0].length;
  }
  if (last < level.length) parts.push(level.slice(last));
  if (parts.some((part) => typeof part === "string" && part.includes("${")))
    throw new MoatError("POLICY_RULE_INVALID", `Unclosed variable in '${source}'`, { detail: { resource: source } });
  return { kind: "template", parts };
}

/**
 * Parses a rule's topic filter. Throws `POLICY_RULE_INVALID` for a filter that breaks MQTT 3.1.1 §4.7
 * or names an unknown variable.
 */
export function parseFilterTemplate(source: string): FilterTemplate {
  const cached = parsed.get(source);
  if (cached !== undefined) return cached;
  const template = parseUncached(source);
  // Recompiling after every role change parses the same filters again; parsed templates are immutable.
  if (parsed.size >= MAX_PARSED) parsed.clear();
  parsed.set(source, template);
  return template;
}

const MAX_PARSED = 50_000;
const parsed = new Map<string, FilterTemplate>();

function parseUncached(source: string): FilterTemplate {
  // Check the MQTT shape with every variable replaced by a harmless placeholder level text.
  const shape = source.replace(VARIABLE, "v");
  const problem = topicFilterProblem(shape);
  if (problem !== null)
    throw new MoatError("POLICY_RULE_INVALID", `Topic filter '${source}' ${problem}`, { detail: { resource: source } });
  const levels = source.split("/").map((level) => deepFreeze(parseLevel(level, source)));
  return Object.freeze({ source, levels: Object.freeze(levels), hasVariables: levels.some((level) => level.kind === "template") });
}

function deepFreeze(level: LevelTemplate): LevelTemplate {
  if (level.kind === "template") {
    for (const part of level.parts) if (typeof part !== "string") Object.freeze(part);
    Object.freeze(level.parts);
  }
  return Object.freeze(level);
}

/**
 * True when a substituted value may be used: not empty, no `/`, `+`, `#` or NUL, and not starting with `$`
 * (which would reach `$SYS`-style topics that wildcards deliberately never match [MQTT-4.7.2-1]).
 */
export function isSafeVariableValue(value: string | null | undefined): value is string {
  if (value === null || value === undefined || value.length === 0) return false;
  if (value.charCodeAt(0) === 36 /* $ */) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 47 /* / */ || c === 43 /* + */ || c === 35 /* # */ || c === 0) return false;
  }
  return true;
}

/** The value of a variable for this subject, or null when it is missing or unsafe. */
export function resolveVariable(ref: VariableRef, subject: DeviceSubject): string | null {
  let value: string | null | undefined;
  switch (ref.kind) {
    case "device.id":
      value = subject.id;
      break;
    case "device.group":
      value = subject.group;
      break;
    case "cert.cn":
      value = subject.certCn;
      break;
    case "device.attr":
      value = subject.attributes !== undefined && Object.hasOwn(subject.attributes, ref.name) ? subject.attributes[ref.name] : null;
      break;
  }
  return isSafeVariableValue(value) ? value : null;
}

/** The concrete text of a template level for this subject, or null when a variable is unsafe. */
export function resolveLevel(parts: ReadonlyArray<string | VariableRef>, subject: DeviceSubject): string | null {
  if (parts.length === 1 && typeof parts[0] !== "string") return resolveVariable(parts[0]!, subject);
  let text = "";
  for (const part of parts) {
    if (typeof part === "string") {
      text += part;
      continue;
    }
    const value = resolveVariable(part, subject);
    if (value === null) return null;
    text += value;
  }
  return text;
}

/** The filter with every variable filled in, or null when any value is missing or unsafe (the rule does not apply). */
export function substituteFilter(template: FilterTemplate, subject: DeviceSubject): string | null {
  if (!template.hasVariables) return template.source;
  const out: string[] = [];
  for (const level of template.levels) {
    if (level.kind === "literal") out.push(level.value);
    else if (level.kind === "plus") out.push("+");
    else if (level.kind === "hash") out.push("#");
    else {
      const text = resolveLevel(level.parts, subject);
      if (text === null) return null;
      out.push(text);
    }
  }
  return out.join("/");
}

/** True when the filter names a device-specific variable (`${device.id}` or `${cert.cn}`). */
export function hasDeviceVariable(template: FilterTemplate): boolean {
  return template.levels.some(
    (level) =>
      level.kind === "template" &&
      level.parts.some((part) => typeof part !== "string" && (part.kind === "device.id" || part.kind === "cert.cn")),
  );
}
