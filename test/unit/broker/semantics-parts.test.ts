import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDelayLevels } from '../../../src/engine/broker/broker-config.js';
import { IndexedMinHeap } from '../../../src/engine/broker/min-heap.js';
import { RebalanceLockManager } from '../../../src/engine/broker/rebalance-lock-manager.js';
import { tagExpressionProblem } from '../../../src/engine/broker/subscription-check.js';
import { ErrorCode, isRbError } from '../../../src/engine/common/errors.js';

describe('broker consumer-semantics parts', () => {
  it('parses RocketMQ delay levels with ms, s, m, h and d units and rejects anything else', () => {
    assert.deepEqual(parseDelayLevels('1s 5s 10s 30s 1m 2m'), [1000, 5000, 10_000, 30_000, 60_000, 120_000]);
    assert.deepEqual(parseDelayLevels(' 100ms  2h 1d '), [100, 7_200_000, 86_400_000]);
    for (const bad of ['', '1x', '5 s', '-1s', 'fast']) {
      assert.throws(
        () => parseDelayLevels(bad),
        (err) => isRbError(err, ErrorCode.ConfigInvalid),
        bad,
      );
    }
  });

  it('pops a min-heap in order for any insertion order', () => {
    let seed = 7;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    const heap = new IndexedMinHeap<{ key: number; heapIndex: number }>((a, b) => a.key < b.key);
    const values = Array.from({ length: 500 }, () => random() % 1000);
    for (const value of values) heap.push({ key: value, heapIndex: -1 });
    const popped: number[] = [];
    for (let i = 0; i < values.length; i++) popped.push(heap.pop()?.key ?? -1);
    assert.deepEqual(
      popped,
      [...values].sort((a, b) => a - b),
    );
    assert.equal(heap.pop(), undefined);
  });

  it('keeps an indexed min-heap in order through removals and key changes', () => {
    let seed = 11;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    const heap = new IndexedMinHeap<{ key: number; heapIndex: number }>((a, b) => a.key < b.key);
    const live = new Set<{ key: number; heapIndex: number }>();
    for (let step = 0; step < 5_000; step++) {
      const action = random() % 4;
      const members = [...live];
      const some = members[random() % Math.max(1, members.length)];
      if (action <= 1 || some === undefined) {
        const item = { key: random() % 1000, heapIndex: -1 };
        heap.push(item);
        live.add(item);
      } else if (action === 2) {
        heap.remove(some);
        heap.remove(some); // a second removal is a no-op
        assert.equal(some.heapIndex, -1);
        live.delete(some);
      } else {
        some.key = random() % 1000;
        heap.update(some);
      }
      const smallest = Math.min(...[...live].map((item) => item.key));
      assert.equal(heap.peek()?.key ?? Infinity, smallest, `step ${step}`);
      assert.equal(heap.size, live.size);
    }
    const drained: number[] = [];
    for (let top = heap.peek(); top !== undefined; top = heap.peek()) {
      drained.push(top.key);
      heap.remove(top);
    }
    assert.deepEqual(
      drained,
      [...live].map((item) => item.key).sort((a, b) => a - b),
    );
    assert.throws(() => {
      const item = { key: 1, heapIndex: -1 };
      heap.push(item);
      heap.push(item);
    }, /already in the heap/);
  });

  it('accepts tag expressions and word patterns, and names the problem of an invalid one', () => {
    for (const good of [undefined, '', '*', 'a', 'a || b', 'a.*.c || x.#', '#']) {
      assert.equal(tagExpressionProblem(good), undefined, String(good));
    }
    assert.match(tagExpressionProblem('a || || b') ?? '', /empty alternative/);
    assert.match(tagExpressionProblem('|| a') ?? '', /empty alternative/);
    assert.match(tagExpressionProblem('a b') ?? '', /whitespace/);
    assert.match(tagExpressionProblem('a | b') ?? '', /single "\|"/);
  });

  it('gives a queue lock to one client per group until it expires or is released', () => {
    const locks = new RebalanceLockManager(1000);
    const q = (queueId: number) => ({ topic: 't', brokerName: 'b', queueId });
    assert.equal(locks.tryLockBatch('g', [q(0), q(1)], 'a', 0).length, 2);
    assert.deepEqual(locks.tryLockBatch('g', [q(1), q(2)], 'b', 500), [q(2)]);
    assert.equal(locks.tryLockBatch('g', [q(1)], 'a', 900).length, 1, 'the holder renews');
    assert.deepEqual(locks.tryLockBatch('g', [q(1)], 'b', 1800), [], 'renewed at 900: still held at 1800');
    assert.deepEqual(locks.tryLockBatch('g', [q(1)], 'b', 1901), [q(1)], 'expired');
    assert.equal(locks.holderOf('g', q(1), 1901), 'b');
    locks.unlockBatch('g', [q(1)], 'a');
    assert.equal(locks.holderOf('g', q(1), 1901), 'b', 'only the holder unlocks');
    locks.unlockBatch('g', [q(1)], 'b');
    assert.equal(locks.holderOf('g', q(1), 1901), undefined);
  });
});
