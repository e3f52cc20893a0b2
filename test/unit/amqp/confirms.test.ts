import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConfirmMethod, ConfirmCoalescer } from '../../../src/adapters/amqp/confirms.js';

/** What a client makes of the methods: `multiple` confirms every still unconfirmed tag up to it. */
class ClientView {
  readonly outcome = new Map<number, boolean>();
  apply(method: ConfirmMethod): number[] {
    const newly: number[] = [];
    for (let tag = method.multiple ? 1 : method.deliveryTag; tag <= method.deliveryTag; tag++) {
      if (this.outcome.has(tag)) continue;
      this.outcome.set(tag, method.name === 'basic.ack');
      newly.push(tag);
    }
    return newly;
  }
}

describe('ConfirmCoalescer', () => {
  it('confirms a turn of acknowledged publishes with one multiple ack', () => {
    const confirms = new ConfirmCoalescer();
    for (let tag = 1; tag <= 100; tag++) confirms.settle(tag, true);
    assert.deepEqual(confirms.drain(), [{ name: 'basic.ack', deliveryTag: 100, multiple: true }]);
    confirms.settle(101, true);
    assert.deepEqual(confirms.drain(), [{ name: 'basic.ack', deliveryTag: 101, multiple: false }]);
    assert.equal(confirms.pending, false);
  });

  it('sends nacks alone and ends the runs around them', () => {
    const confirms = new ConfirmCoalescer();
    [true, true, false, true, true].forEach((acked, index) => confirms.settle(index + 1, acked));
    assert.deepEqual(confirms.drain(), [
      { name: 'basic.ack', deliveryTag: 2, multiple: true },
      { name: 'basic.nack', deliveryTag: 3, multiple: false, requeue: false },
      { name: 'basic.ack', deliveryTag: 5, multiple: true },
    ]);
  });

  it('does not hold a tag back behind an unsettled lower one, nor confirm it twice later', () => {
    const confirms = new ConfirmCoalescer();
    confirms.settle(2, true);
    confirms.settle(3, true);
    assert.deepEqual(confirms.drain(), [
      { name: 'basic.ack', deliveryTag: 2, multiple: false },
      { name: 'basic.ack', deliveryTag: 3, multiple: false },
    ]);
    confirms.settle(1, true);
    confirms.settle(4, true);
    confirms.settle(5, true);
    assert.deepEqual(confirms.drain(), [
      { name: 'basic.ack', deliveryTag: 1, multiple: false },
      { name: 'basic.ack', deliveryTag: 5, multiple: true },
    ]);
  });

  it('gives a client every tag exactly once with its own outcome, whatever the settle order', () => {
    let seed = 3;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    for (let trial = 0; trial < 200; trial++) {
      const confirms = new ConfirmCoalescer();
      const client = new ClientView();
      const truth = new Map<number, boolean>();
      const count = 1 + (random() % 60);
      // Stores settle roughly in order with some overtaking, drains fall between them.
      const order = Array.from({ length: count }, (_, index) => index + 1).sort(
        (a, b) => a + (random() % 8) - (b + (random() % 8)),
      );
      for (const tag of order) {
        const acked = random() % 10 !== 0;
        truth.set(tag, acked);
        confirms.settle(tag, acked);
        if (random() % 4 === 0) {
          for (const method of confirms.drain()) {
            const newly = client.apply(method);
            assert.ok(newly.length > 0, `${JSON.stringify(method)} confirmed nothing new`);
            for (const confirmed of newly) {
              assert.ok(truth.has(confirmed), `tag ${confirmed} confirmed before it settled`);
              assert.equal(client.outcome.get(confirmed), truth.get(confirmed), `outcome of tag ${confirmed}`);
            }
          }
        }
      }
      for (const method of confirms.drain()) {
        for (const confirmed of client.apply(method)) {
          assert.equal(client.outcome.get(confirmed), truth.get(confirmed), `outcome of tag ${confirmed}`);
        }
      }
      assert.equal(client.outcome.size, count, `trial ${trial}: every tag confirmed`);
      assert.equal(confirms.pending, false);
    }
  });
});
