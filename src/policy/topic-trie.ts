/**
 * A topic trie compiled from one role's rules for one action. Each level of a rule's filter is an edge:
 * literal (hash map), `+`, a template level with variables (resolved per subject), or a terminal `#`.
 * A lookup walks only the edges the topic can take, so its cost follows the topic's depth, not the
 * number of rules.
 */
import type { DecidingRule, DeviceSubject, Effect, Rule } from "./model.js";
import { type FilterTemplate, type VariableRef, resolveLevel } from "./resource-template.js";

/** A rule placed in a trie, with what an explanation needs. */
export interface CompiledRule {
  /** Global order (role order, then rule order): the lowest ordinal wins among equals, so answers are stable. */
  readonly ordinal: number;
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

class TrieNode {
  literal: Map<string, TrieNode> | null = null;
  plus: TrieNode | null = null;
  templates: TemplateEdge[] | null = null;
  /** Rules whose filter ends with `#` right below this node (so they also match this node's own topic). */
  hash: CompiledRule[] | null = null;
  /** Rules whose filter ends exactly at this node. */
  terminal: CompiledRule[] | null = null;
}

/** Collects matching rules, keeping the first deny and the first allow by ordinal. */
export class MatchAccumulator {
  allow: CompiledRule | null = null;
  deny: CompiledRule | null = null;
  /** Allow rules that intersect a wildcard SUBSCRIBE request; coverage is checked by the caller. */
  candidates: CompiledRule[] | null = null;

  reset(collectCandidates: boolean): void {
    this.allow = null;
    this.deny = null;
    this.candidates = collectCandidates ? [] : null;
  }

  add(rules: readonly CompiledRule[]): void {
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
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
const SLASH = "/";

/** The trie for one role and one action. */
export class TopicTrie {
  private readonly root = new TrieNode();
  size = 0;

  insert(rule: CompiledRule): void {
    let node = this.root;
    for (const level of rule.template.levels) {
      switch (level.kind) {
        case "hash":
          (node.hash ??= []).push(rule);
          this.size++;
          return;
        case "plus":
          node = node.plus ??= new TrieNode();
          break;
        case "literal": {
          const map = (node.literal ??= new Map());
          let next = map.get(level.value);
          if (next === undefined) map.set(level.value, (next = new TrieNode()));
          node = next;
          break;
        }
        case "template": {
          const key = JSON.stringify(level.parts);
          const edges = (node.templates ??= []);
          let edge = edges.find((e) => e.key === key);
          if (edge === undefined) edges.push((edge = { key, parts: level.parts, node: new TrieNode() }));
          node = edge.node;
          break;
        }
      }
    }
    (node.terminal ??= []).push(rule);
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

/**
 * `start` is the index where the next topic level begins; `start > topic.length` means every level is consumed.
 * `dollarFirst` is true only at the root for a `$` topic: wildcards there must not match [MQTT-4.7.2-1].
 */
function walkName(
  node: TrieNode,
  topic: string,
  start: number,
  dollarFirst: boolean,
  subject: DeviceSubject,
  acc: MatchAccumulator,
): void {
  // `#` matches the parent level too [MQTT-4.7.1-2], so it applies whether or not levels remain.
  if (node.hash !== null && !dollarFirst) acc.add(node.hash);
  if (start > topic.length) {
    if (node.terminal !== null) acc.add(node.terminal);
    return;
  }
  const end = topic.indexOf(SLASH, start);
  const level = end < 0 ? topic.slice(start) : topic.slice(start, end);
  const next = end < 0 ? topic.length + 1 : end + 1;
  if (node.literal !== null) {
    const child = node.literal.get(level);
    if (child !== undefined) walkName(child, topic, next, false, subject, acc);
  }
  if (node.plus !== null && !dollarFirst) walkName(node.plus, topic, next, false, subject, acc);
  if (node.templates !== null) {
    for (const edge of node.templates) {
      if (resolveLevel(edge.parts, subject) === level) walkName(edge.node, topic, next, false, subject, acc);
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
  if (node.literal !== null) {
    const child = node.literal.get(request);
    if (child !== undefined) walkFilter(child, req, i + 1, subject, acc);
  }
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
  }
  if (node.plus !== null) visit(node.plus);
  if (node.templates !== null) {
    for (const edge of node.templates) {
      const level = resolveLevel(edge.parts, subject);
      if (level !== null && !(first && level.charCodeAt(0) === DOLLAR)) visit(edge.node);
    }
  }
}
