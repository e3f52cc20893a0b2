import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChurnMap, ChurnSet, OffsetTable } from '../../../src/engine/common/churn-map.js';

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

describe('OffsetTable', () => {
  it('knows its smallest offset through mostly ascending adds, out-of-order ends, re-adds and lower adds', () => {
    let seed = 11;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    const table = new OffsetTable<number>();
    const reference = new Map<number, number>();
    let next = 2 ** 40; // past the array-index range, as offsets of a long-lived queue can be
    for (let step = 0; step < 12_000; step++) {
      // More adds than ends: the table grows to about a thousand, so the front is compacted too.
      const roll = random() % 100;
      if (roll < 50) {
        table.set(next, step);
        reference.set(next, step);
        next++;
      } else if (roll < 53 && reference.size > 0) {
        // Below the largest: a replayed or reset offset, sometimes one that just ended.
        const offset = next - 1 - (random() % 2000);
        table.set(offset, step);
        reference.set(offset, step);
      } else if (reference.size > 0) {
        // Usually ends one near the front (acks mostly come in order), sometimes any.
        const keys = [...reference.keys()];
        const pick = random() % 10 === 0 ? random() % keys.length : random() % Math.min(3, keys.length);
        const offset = keys.sort((a, b) => a - b)[pick] as number;
        assert.equal(table.delete(offset), true);
        reference.delete(offset);
      }
      const expected = reference.size === 0 ? undefined : Math.min(...reference.keys());
      assert.equal(table.smallest(), expected, `step ${step}`);
      assert.equal(table.size, reference.size);
    }
    table.clear();
    assert.equal(table.smallest(), undefined);
    table.set(5, 1).set(3, 2);
    assert.equal(table.smallest(), 3);
    assert.deepEqual(table.values().sort(), [1, 2]);
  });
});
