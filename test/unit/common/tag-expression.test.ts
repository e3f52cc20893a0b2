import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { javaStringHashCode } from '../../../src/engine/common/java-hash.js';
import {
  matchesTag,
  mayMatchTagsCode,
  parseTagExpression,
  tagsCodeOf,
} from '../../../src/engine/common/tag-expression.js';

describe('tag hash code', () => {
  it('equals Java String.hashCode for known values', () => {
    // Values computed by Java: "TagA".hashCode() == 2598919, "".hashCode() == 0,
    // "hello world".hashCode() == 1794106052, "polygenelubricants".hashCode() == Integer.MIN_VALUE.
    assert.equal(javaStringHashCode('TagA'), 2598919);
    assert.equal(javaStringHashCode(''), 0);
    assert.equal(javaStringHashCode('hello world'), 1794106052);
    assert.equal(javaStringHashCode('polygenelubricants'), -2147483648);
  });
  it('is 0 for a message without tag', () => {
    assert.equal(tagsCodeOf(undefined), 0);
  });
});

describe('tag expressions', () => {
  it('treats * and empty as match-all', () => {
    for (const expression of ['*', '', undefined, ' * ']) {
      const filter = parseTagExpression(expression);
      assert.equal(filter.matchesAll, true);
      assert.equal(matchesTag(filter, undefined), true);
    }
  });
  it('matches any of the tags of a || b and nothing else', () => {
    const filter = parseTagExpression('TagA || TagB');
    assert.equal(matchesTag(filter, 'TagA'), true);
    assert.equal(matchesTag(filter, 'TagB'), true);
    assert.equal(matchesTag(filter, 'TagC'), false);
    assert.equal(matchesTag(filter, undefined), false);
    assert.equal(mayMatchTagsCode(filter, tagsCodeOf('TagA')), true);
    assert.equal(mayMatchTagsCode(filter, tagsCodeOf('TagC')), false);
  });
  it('matches word patterns with * as one word and # as any number of words', () => {
    const star = parseTagExpression('b.*');
    assert.equal(matchesTag(star, 'b.c'), true);
    assert.equal(matchesTag(star, 'b'), false);
    assert.equal(matchesTag(star, 'b.c.d'), false);
    const hash = parseTagExpression('b.#');
    assert.equal(matchesTag(hash, 'b'), true);
    assert.equal(matchesTag(hash, 'b.c.d'), true);
    assert.equal(matchesTag(hash, 'c.b'), false);
    const middle = parseTagExpression('a.#.z');
    assert.equal(matchesTag(middle, 'a.z'), true);
    assert.equal(matchesTag(middle, 'a.b.c.z'), true);
    assert.equal(matchesTag(middle, 'a.b.c'), false);
  });
  it('never rules out a unit by hash when a word pattern is present', () => {
    assert.equal(mayMatchTagsCode(parseTagExpression('x || b.*'), tagsCodeOf('b.q')), true);
  });
});
