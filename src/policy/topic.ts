/**
 * MQTT 3.1.1 topic names and topic filters (OASIS MQTT 3.1.1 §4.7), and the plain, obviously-correct
 * matching functions the compiled trie is checked against.
 */

/** Longest topic in bytes: a UTF-8 string is prefixed by a 16-bit length [MQTT-1.5.3]. */
export const MAX_TOPIC_BYTES = 65_535;

/** Why a topic name or filter is not valid, or null when it is. */
export function topicNameProblem(topic: string): string | null {
  if (topic.length === 0) return "is empty [MQTT-4.7.3-1]";
  // One pass over the characters: this runs on every PUBLISH.
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === 0) return "contains NUL [MQTT-4.7.3-2]";
    if (c === 43 /* + */ || c === 35 /* # */) return "contains a wildcard, which topic names must not [MQTT-3.3.2-2]";
  }
  // A UTF-16 unit is at most 3 UTF-8 bytes, so only long topics need the exact count.
  if (topic.length > MAX_TOPIC_BYTES / 3 && Buffer.byteLength(topic, "utf8") > MAX_TOPIC_BYTES) return "is longer than 65535 bytes";
  return null;
}

/** Why a topic filter is not valid, or null when it is. */
export function topicFilterProblem(filter: string): string | null {
  if (filter.length === 0) return "is empty [MQTT-4.7.3-1]";
  if (filter.includes("\u0000")) return "contains NUL [MQTT-4.7.3-2]";
  if (Buffer.byteLength(filter, "utf8") > MAX_TOPIC_BYTES) return "is longer than 65535 bytes";
  const levels = filter.split("/");
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes("#") && (level !== "#" || i !== levels.length - 1))
      return "uses '#' other than as the whole last level [MQTT-4.7.1-2]";
    if (level.includes("+") && level !== "+") return "uses '+' other than as a whole level [MQTT-4.7.1-3]";
  }
  return null;
}

export function isValidTopicName(topic: string): boolean {
  return topicNameProblem(topic) === null;
}

export function isValidTopicFilter(filter: string): boolean {
  return topicFilterProblem(filter) === null;
}

/** True when the filter contains `+` or `#`. */
export function hasWildcard(filter: string): boolean {
  return filter.includes("+") || filter.includes("#");
}

/**
 * Does the topic name match the filter? Plain level-by-level reference implementation.
 * `#` also matches the parent level (`a/#` matches `a`) [MQTT-4.7.1-2]; wildcards in the first level
 * never match a topic starting with `$` [MQTT-4.7.2-1].
 */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  if (topic.startsWith("$") && (f[0] === "+" || f[0] === "#")) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * Is every topic the `requested` filter can match also matched by `allowed`? A SUBSCRIBE request is
 * itself a filter, so granting it needs coverage, not just a match: `devices/d1/#` covers
 * `devices/d1/+`, but nothing except `#` covers `#`.
 */
export function filterCovers(allowed: string, requested: string): boolean {
  const a = allowed.split("/");
  const r = requested.split("/");
  // Per [MQTT-4.7.2-1] a wildcard first level only reaches non-`$` topics, so it cannot cover `$…`.
  if (r[0]!.startsWith("$") && (a[0] === "+" || a[0] === "#")) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === "#") return true;
    if (i >= r.length) return false;
    if (r[i] === "#") return false;
    if (a[i] === "+") continue;
    if (r[i] === "+" || a[i] !== r[i]) return false;
  }
  return a.length === r.length;
}

/**
 * Is there at least one topic name both filters match? Used for deny rules on SUBSCRIBE: a request that
 * could deliver even one denied topic is refused.
 */
export function filtersIntersect(x: string, y: string): boolean {
  const a = x.split("/");
  const b = y.split("/");
  const wild = (level: string) => level === "+" || level === "#";
  if ((wild(a[0]!) && b[0]!.startsWith("$")) || (wild(b[0]!) && a[0]!.startsWith("$"))) return false;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const p = a[i];
    const q = b[i];
    if (p === "#" || q === "#") return true;
    if (p === undefined || q === undefined) return false;
    if (p !== "+" && q !== "+" && p !== q) return false;
  }
  return true;
}
