/**
 * A topic trie compiled from the rules of every role for one action. Each level of a rule's filter is an
 * edge: literal, `+`, a template level with variables (resolved per subject), or a terminal `#`. Rules sit
 * in per-role buckets at the node where their filter ends, so one walk serves any set of held roles and
 * the roles' common prefixes (`devices/${device.id}/…`) share nodes. A lookup walks only the edges the
 * topic can take: its cost follows the topic's depth, not the number of rules or roles.
 */
import type { DecidingRule, DeviceSubject, Effect, Rule } from "./model.js";
import { type FilterTemplate, type VariableRef, resolveLevel, resolveVariable } from "./resource-template.js";

/** A rule placed in a trie, with what an explanation needs. */
export interface CompiledRule {
  /** Global order (role order, then rule order): the lowest ordinal wins among equals, so answers are stable. */
  readonly ordinal: number;
  /** Index of the role in the compiled policy; decisions consider only rules of held roles. */
  readonly roleId: number;
  readonly effect: Effect;
  readonly role: string;
  readonly index: number;
  readonly rule: Rule;
  readonly template: FilterTemplate;
  /** The explanation handed out with decisions, built once at compile time. */
  readonly explanation: Readonly<DecidingRule>;
}

interface TemplateEdge {
  readonly key: string;
  readonly parts: ReadonlyArray<string | VariableRef>;
  readonly node: TrieNode;
}

/** Up to this many literal children are kept in arrays and compared in place (no substring per lookup). */
const SMALL_FANOUT = 8;

/** Above this many rules, a bucket also indexes its rules by role. */
const BUCKET_INDEX_AT = 8;

/** The rules ending at one node: all of them, and by role once there are many. */
class RuleBucket {
  readonly all: CompiledRule[] = [];
  byRole: Map<number, CompiledRule[]> | null = null;

  push(rule: CompiledRule): void {
    this.all.push(rule);
    if (this.byRole !== null) {
      const list = this.byRole.get(rule.roleId);
      if (list === undefined) this.byRole.set(rule.roleId, [rule]);
      else list.push(rule);
    } else if (this.all.length > BUCKET_INDEX_AT) {
      this.byRole = new Map();
      for (const r of this.all) this.byRole.set(r.roleId, [...(this.byRole.get(r.roleId) ?? []), r]);
    }
  }
}

class TrieNode {
  literalKeys: string[] | null = null;
  literalNodes: TrieNode[] | null = null;
  /** Replaces the arrays once a node has more than SMALL_FANOUT literal children. */
  literal: Map<string, TrieNode> | null = null;
  plus: TrieNode | null = null;
  templates: TemplateEdge[] | null = null;
  /** Rules whose filter ends with `#` right below this node (so they also match this node's own topic). */
  hash: RuleBucket | null = null;
  /** Rules whose filter ends exactly at this node. */
  terminal: RuleBucket | null = null;
}

/** Collects matching rules of the held roles, keeping the first deny and the first allow by ordinal. */
export class MatchAccumulator {
  /** Role ids of the subject's roles. */
  held: readonly number[] = [];
  allow: CompiledRule | null = null;
  deny: CompiledRule | null = null;
  /** Allow rules that intersect a wildcard SUBSCRIBE request; coverage is checked by the caller. */
  candidates: CompiledRule[] | null = null;

  reset(held: readonly number[], collectCandidates: boolean): void {
    this.held = held;
    this.allow = null;
    this.deny = null;
    this.candidates = collectCandidates ? [] : null;
  }

  add(bucket: RuleBucket): void {
    const held = this.held;
    if (bucket.byRole !== null) {
      for (let h = 0; h < held.length; h++) {
        const rules = bucket.byRole.get(held[h]!);
        if (rules !== undefined) this.consider(rules, false);
      }
    } else this.consider(bucket.all, true);
  }

  private consider(rules: readonly CompiledRule[], checkHeld: boolean): void {
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (checkHeld && !this.held.includes(rule.roleId)) continue;
      if (rule.effect === "deny") {
        if (this.deny === null || rule.ordinal < this.deny.ordinal) this.deny = rule;
      } else if (this.candidates !== null) {
        this.candidates.push(rule);
      } else if (this.allow === null || rule.ordinal < this.allow.ordinal) {
        this.allow = rule;
      }
    }
  }
}

const DOLLAR = 36;
const SLASH = 47;

/** The trie for one role and one action. */
/**
 * Shares equal level strings and template parts between the tries of one compiled policy, so a thousand
 * roles that all start with `devices/${device.id}` touch the same few objects (fewer cache misses).
 */
export class TrieInterner {
  private readonly strings = new Map<string, string>();
  private readonly templates = new Map<string, ReadonlyArray<string | VariableRef>>();

  string(value: string): string {
    const known = this.strings.get(value);
    if (known !== undefined) return known;
    this.strings.set(value, value);
    return value;
  }

  template(key: string, parts: ReadonlyArray<string | VariableRef>): ReadonlyArray<string | VariableRef> {
    const known = this.templates.get(key);
    if (known !== undefined) return known;
    const shared = Object.freeze(parts.map((part) => (typeof part === "string" ? this.string(part) : Object.freeze({ ...part }))));
    this.templates.set(key, shared);
    return shared;
  }
}

export class TopicTrie {
  constructor(private readonly interner: TrieInterner = new TrieInterner()) {}

  private readonly root = new TrieNode();
  size = 0;

  insert(rule: CompiledRule): void {
    let node = this.root;
    for (const level of rule.template.levels) {
      switch (level.kind) {
        case "hash":
          (node.hash ??= new RuleBucket()).push(rule);
          this.size++;
          return;
        case "plus":
          node = node.plus ??= new TrieNode();
          break;
        case "literal":
          node = literalChildOrCreate(node, this.interner.string(level.value));
          break;
        case "template": {
          const key = JSON.stringify(level.parts);
          const edges = (node.templates ??= []);
          let edge = edges.find((e) => e.key === key);
          if (edge === undefined) edges.push((edge = { key, parts: this.interner.template(key, level.parts), node: new TrieNode() }));
          node = edge.node;
          break;
        }
      }
    }
    (node.terminal ??= new RuleBucket()).push(rule);
    this.size++;
  }

  /** Adds every rule whose filter matches the topic name to `acc`. The topic must be a valid name. */
  matchName(topic: string, subject: DeviceSubject, acc: MatchAccumulator): void {
    walkName(this.root, topic, 0, topic.charCodeAt(0) === DOLLAR, subject, acc);
  }

  /**
   * Adds every rule whose filter intersects the requested filter to `acc` (for SUBSCRIBE). With
   * `acc.candidates` set, allow rules are collected there so the caller can check coverage.
   */
  matchFilter(levels: readonly string[], subject: DeviceSubject, acc: MatchAccumulator): void {
    walkFilter(this.root, levels, 0, subject, acc);
  }
}

function literalChildOrCreate(node: TrieNode, key: string): TrieNode {
  const existing = literalChild(node, key);
  if (existing !== undefined) return existing;
  const child = new TrieNode();
  if (node.literal !== null) node.literal.set(key, child);
  else if (node.literalKeys === null || node.literalKeys.length < SMALL_FANOUT) {
    (node.literalKeys ??= []).push(key);
    (node.literalNodes ??= []).push(child);
  } else {
    node.literal = new Map(node.literalKeys.map((k, i) => [k, node.literalNodes![i]!]));
    node.literal.set(key, child);
    node.literalKeys = null;
    node.literalNodes = null;
  }
  return child;
}

function literalChild(node: TrieNode, key: string): TrieNode | undefined {
  if (node.literal !== null) return node.literal.get(key);
  if (node.literalKeys === null) return undefined;
  const i = node.literalKeys.indexOf(key);
  return i < 0 ? undefined : node.literalNodes![i];
}

/** Does topic[start, end) equal `text`? Compared in place to avoid a substring on the hot path. */
function regionEquals(topic: string, start: number, end: number, text: string): boolean {
  if (end - start !== text.length) return false;
  for (let j = 0; j < text.length; j++) if (topic.charCodeAt(start + j) !== text.charCodeAt(j)) return false;
  return true;
}

/** Does the template level, filled in for this subject, equal topic[start, end)? */
function templateMatchesRegion(parts: ReadonlyArray<string | VariableRef>, subject: DeviceSubject, topic: string, start: number, end: number): boolean {
  let pos = start;
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p]!;
    const text = typeof part === "string" ? part : resolveVariable(part, subject);
    if (text === null || pos + text.length > end) return false;
    for (let j = 0; j < text.length; j++) if (topic.charCodeAt(pos + j) !== text.charCodeAt(j)) return false;
    pos += text.length;
  }
  return pos === end;
}

/**
 * Walks a topic name in place: `start` is where the next level begins; `start > topic.length` means every
 * level is consumed. `dollarFirst` is true only at the root for a `$` topic: wildcards there must not
 * match it [MQTT-4.7.2-1].
 */
function walkName(node: TrieNode, topic: string, start: number, dollarFirst: boolean, subject: DeviceSubject, acc: MatchAccumulator): void {
  // `#` matches the parent level too [MQTT-4.7.1-2], so it applies whether or not levels remain.
  if (node.hash !== null && !dollarFirst) acc.add(node.hash);
  const n = topic.length;
  if (start > n) {
    if (node.terminal !== null) acc.add(node.terminal);
    return;
  }
  let end = start;
  while (end < n && topic.charCodeAt(end) !== SLASH) end++;
  const next = end + 1;
  const keys = node.literalKeys;
  if (keys !== null) {
    for (let k = 0; k < keys.length; k++) {
      if (regionEquals(topic, start, end, keys[k]!)) {
        walkName(node.literalNodes![k]!, topic, next, false, subject, acc);
        break;
      }
    }
  } else if (node.literal !== null) {
    const child = node.literal.get(topic.slice(start, end));
    if (child !== undefined) walkName(child, topic, next, false, subject, acc);
  }
  if (node.plus !== null && !dollarFirst) walkName(node.plus, topic, next, false, subject, acc);
  const templates = node.templates;
  if (templates !== null) {
    for (let t = 0; t < templates.length; t++) {
      const edge = templates[t]!;
      if (templateMatchesRegion(edge.parts, subject, topic, start, end)) walkName(edge.node, topic, next, false, subject, acc);
    }
  }
}

function walkFilter(node: TrieNode, req: readonly string[], i: number, subject: DeviceSubject, acc: MatchAccumulator): void {
  const first = i === 0;
  const request = req[i];
  // Rule wildcards at the first level never reach a `$` topic [MQTT-4.7.2-1].
  const dollarRequest = first && request !== undefined && request !== "+" && request !== "#" && request.charCodeAt(0) === DOLLAR;
  if (node.hash !== null && !dollarRequest) acc.add(node.hash);
  if (request === undefined) {
    if (node.terminal !== null) acc.add(node.terminal);
    return;
  }
  if (request === "#") {
    // The request's `#` also matches the parent, so rules ending here intersect it; then every edge does.
    if (node.terminal !== null) acc.add(node.terminal);
    forEachChild(node, subject, first, (child) => walkFilter(child, req, i, subject, acc));
    return;
  }
  if (request === "+") {
    forEachChild(node, subject, first, (child) => walkFilter(child, req, i + 1, subject, acc));
    return;
  }
  const child = literalChild(node, request);
  if (child !== undefined) walkFilter(child, req, i + 1, subject, acc);
  if (node.plus !== null && !dollarRequest) walkFilter(node.plus, req, i + 1, subject, acc);
  if (node.templates !== null) {
    for (const edge of node.templates) {
      if (resolveLevel(edge.parts, subject) === request) walkFilter(edge.node, req, i + 1, subject, acc);
    }
  }
}

/** Visits every edge a request wildcard can take; at the first level, skips `$` levels the wildcard cannot match. */
function forEachChild(node: TrieNode, subject: DeviceSubject, first: boolean, visit: (child: TrieNode) => void): void {
  if (node.literal !== null) {
    for (const [level, child] of node.literal) if (!(first && level.charCodeAt(0) === DOLLAR)) visit(child);
  } else if (node.literalKeys !== null) {
    node.literalKeys.forEach((level, k) => {
      if (!(first && level.charCodeAt(0) === DOLLAR)) visit(node.literalNodes![k]!);
    });
  }
  if (node.plus !== null) visit(node.plus);
  if (node.templates !== null) {
    for (const edge of node.templates) {
      const level = resolveLevel(edge.parts, subject);
      if (level !== null && !(first && level.charCodeAt(0) === DOLLAR)) visit(edge.node);
    }
  }
}
