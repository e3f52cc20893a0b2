import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChurnMap, ChurnSet } from '../../../src/engine/common/churn-map.js';

describe('ChurnMap', () => {
  it('agrees with a Map through random sets and deletes of integer and string keys', () => {
    let seed = 5;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    const churn = new ChurnMap<number | string, number>();
    const reference = new Map<string, number>();
    for (let step = 0; step < 20_000; step++) {
      const raw = random() % 300;
      // Integer keys, large ones past the array-index range, negative ones and plain strings.
      const key = raw % 4 === 0 ? `k${raw}` : raw % 4 === 1 ? raw * 2 ** 33 : raw % 4 === 2 ? -raw : raw;
      if (random() % 3 === 0) {
        assert.equal(churn.delete(key), reference.delete(String(key)), `delete ${key}`);
      } else {
        churn.set(key, step);
        reference.set(String(key), step);
      }
      assert.equal(churn.size, reference.size);
      assert.equal(churn.get(key), reference.get(String(key)));
      assert.equal(churn.has(key), reference.has(String(key)));
    }
    assert.deepEqual(new Set(churn.keyStrings()), new Set(reference.keys()));
    assert.deepEqual(
      churn.values().sort((a, b) => a - b),
      [...reference.values()].sort((a, b) => a - b),
    );
    churn.clear();
    assert.equal(churn.size, 0);
    assert.deepEqual(churn.values(), []);
  });

  it('keeps an undefined value as a member and walks integer keys in ascending order', () => {
    const churn = new ChurnMap<number, string | undefined>();
    churn.set(30, 'c').set(10, 'a').set(20, undefined);
    assert.equal(churn.has(20), true);
    assert.equal(churn.size, 3);
    assert.deepEqual(churn.values(), ['a', undefined, 'c']);
    // Names of Object.prototype members are plain keys here.
    const byName = new ChurnMap<string, number>();
    assert.equal(byName.has('constructor'), false);
    assert.equal(byName.get('toString'), undefined);
    byName.set('__proto__', 1);
    assert.equal(byName.get('__proto__'), 1);
    assert.equal(byName.size, 1);
  });
});

describe('ChurnSet', () => {
  it('holds each object once, in the order added, and forgets removed ones', () => {
    const set = new ChurnSet<{ name: string }>();
    const a = { name: 'a' };
    const b = { name: 'b' };
    const c = { name: 'c' };
    set.add(a).add(b).add(a).add(c);
    assert.equal(set.size, 3);
    assert.deepEqual(
      [...set].map((member) => member.name),
      ['a', 'b', 'c'],
    );
    assert.equal(set.delete(b), true);
    assert.equal(set.delete(b), false);
    assert.equal(set.has(b), false);
    set.add(b);
    assert.deepEqual(
      set.values().map((member) => member.name),
      ['a', 'c', 'b'],
    );
    set.clear();
    assert.equal(set.size, 0);
    assert.equal(set.has(a), false);
  });
});
