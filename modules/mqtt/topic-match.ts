// Topic names and topic filters (MQTT 5.0 4.7 / 3.1.1 4.7): validity checks
// and wildcard matching. Character-wise over the strings: no split(), no
// allocation, so routing a message to many filters stays cheap.

const SLASH = 0x2f; // '/'
const PLUS = 0x2b; // '+'
const HASH = 0x23; // '#'
const DOLLAR = 0x24; // '$'

/**
 * A legal topic filter: at least one character [MQTT-4.7.3-1], no U+0000
 * [MQTT-4.7.3-2], `+` alone in its level [MQTT-4.7.1-2], `#` alone in the
 * last level [MQTT-4.7.1-1].
 */
export function isValidTopicFilter(filter: string): boolean {
  const n = filter.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c === 0) return false;
    if (c === PLUS) {
      if ((i > 0 && filter.charCodeAt(i - 1) !== SLASH) || (i + 1 < n && filter.charCodeAt(i + 1) !== SLASH)) return false;
    } else if (c === HASH) {
      if ((i > 0 && filter.charCodeAt(i - 1) !== SLASH) || i !== n - 1) return false;
    }
  }
  return true;
}

/** A legal topic name: at least one character, no wildcard [MQTT-4.7.0-1], no U+0000. */
export function isValidTopicName(topic: string): boolean {
  const n = topic.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = topic.charCodeAt(i);
    if (c === 0 || c === PLUS || c === HASH) return false;
  }
  return true;
}

/** Whether a (valid) filter holds `+` or `#`. */
export function hasWildcard(filter: string): boolean {
  for (let i = 0; i < filter.length; i++) {
    const c = filter.charCodeAt(i);
    if (c === PLUS || c === HASH) return true;
  }
  return false;
}

/**
 * Whether the valid topic filter `filter` matches the topic name `topic`.
 * `+` matches exactly one level (possibly empty), `#` the parent level and any
 * number of child levels (4.7.1.2); a filter starting with a wildcard
 * does not match a topic starting with `$` [MQTT-4.7.2-1].
 */
export function topicMatches(filter: string, topic: string): boolean {
  const fl = filter.length;
  const tl = topic.length;
  if (fl === 0) return false;
  const f0 = filter.charCodeAt(0);
  if ((f0 === PLUS || f0 === HASH) && tl > 0 && topic.charCodeAt(0) === DOLLAR) return false;
  let fi = 0;
  let ti = 0;
  while (fi < fl) {
    const c = filter.charCodeAt(fi);
    if (c === HASH) return true;
    if (c === PLUS) {
      while (ti < tl && topic.charCodeAt(ti) !== SLASH) ti++;
      fi++;
      continue;
    }
    if (ti < tl && topic.charCodeAt(ti) === c) {
      fi++;
      ti++;
      continue;
    }
    // "a/#" also matches "a": the topic ended where the filter has "/#" left.
    return ti === tl && c === SLASH && fi + 2 === fl && filter.charCodeAt(fi + 1) === HASH;
  }
  return ti === tl;
}
