import { javaStringHashCode } from './java-hash.js';

/**
 * Tag expressions the engine understands (design.md section 3):
 * - `*` or empty: every message;
 * - `a || b || c`: any of the listed tags, each an exact tag or a word pattern;
 * - word patterns over `.`-separated words: `*` stands for exactly one word, `#` for zero or more.
 * Exact tags keep RocketMQ's fast path: the ConsumeQueue unit's tag hash code is compared first and
 * the stored tag is checked only on a hash match.
 */
export const SUBSCRIBE_ALL = '*';

/** The ConsumeQueue tag hash code: Java `String.hashCode()` of the tag; 0 for a message without tag. */
export function tagsCodeOf(tag: string | undefined): number {
  return tag === undefined || tag.length === 0 ? 0 : javaStringHashCode(tag);
}

export interface TagFilter {
  readonly expression: string;
  readonly matchesAll: boolean;
  /** Exact tags, matched by hash code first. */
  readonly exactTags: ReadonlySet<string>;
  readonly exactCodes: ReadonlySet<number>;
  /** Word patterns, each split into words. */
  readonly wordPatterns: readonly (readonly string[])[];
}

function isWordPattern(tag: string): boolean {
  return tag.split('.').some((word) => word === '*' || word === '#');
}

export function parseTagExpression(expression: string | undefined): TagFilter {
  const text = (expression ?? '').trim();
  const parts = text
    .split('||')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
  const matchesAll = parts.length === 0 || parts.includes(SUBSCRIBE_ALL) || parts.includes('#');
  const exactTags = new Set<string>();
  const wordPatterns: string[][] = [];
  if (!matchesAll) {
    for (const part of parts) {
      if (isWordPattern(part)) wordPatterns.push(part.split('.'));
      else exactTags.add(part);
    }
  }
  return {
    expression: text.length === 0 ? SUBSCRIBE_ALL : text,
    matchesAll,
    exactTags,
    exactCodes: new Set([...exactTags].map((tag) => javaStringHashCode(tag))),
    wordPatterns,
  };
}

/** Cheap first check on a ConsumeQueue unit: false means the message certainly does not match. */
export function mayMatchTagsCode(filter: TagFilter, tagsCode: number): boolean {
  return filter.matchesAll || filter.wordPatterns.length > 0 || filter.exactCodes.has(tagsCode);
}

/** The exact check, on the stored tag. */
export function matchesTag(filter: TagFilter, tag: string | undefined): boolean {
  if (filter.matchesAll) return true;
  if (tag === undefined || tag.length === 0) return false;
  if (filter.exactTags.has(tag)) return true;
  if (filter.wordPatterns.length === 0) return false;
  const words = tag.split('.');
  return filter.wordPatterns.some((pattern) => matchWords(pattern, 0, words, 0));
}

function matchWords(pattern: readonly string[], p: number, words: readonly string[], w: number): boolean {
  if (p === pattern.length) return w === words.length;
  const token = pattern[p];
  if (token === '#') {
    for (let skip = w; skip <= words.length; skip++) {
      if (matchWords(pattern, p + 1, words, skip)) return true;
    }
    return false;
  }
  if (w === words.length) return false;
  if (token === '*' || token === words[w]) return matchWords(pattern, p + 1, words, w + 1);
  return false;
}
