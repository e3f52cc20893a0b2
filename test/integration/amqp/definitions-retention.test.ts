import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import { startAmqp, type AmqpTestBed } from './harness.js';

describe('AMQP durable definitions and CommitLog retention', () => {
  let bed: AmqpTestBed;
  before(async () => {
    // Snapshots every 100 ms here (10 minutes by default), so the test need not wait that long.
    bed = await startAmqp('in-process', { definitionsSnapshotIntervalMs: 100 });
  });
  after(async () => {
    await bed.close();
  });

  it('keeps durable exchanges, queues and bindings after retention deleted the segments they were declared in', async () => {
    const first = await amqp.connect(bed.url);
    const channel = await first.createConfirmChannel();
    await channel.assertExchange('kept.events', 'topic', { durable: true });
    await channel.assertQueue('kept-q', { durable: true, arguments: { 'x-max-length': 1000 } });
    await channel.bindQueue('kept-q', 'kept.events', 'order.*');
    await channel.assertQueue('deleted-q', { durable: true });
    await channel.deleteQueue('deleted-q');
    await new Promise((resolve) => setTimeout(resolve, 500)); // a snapshot interval or five
    // Fill several 64 KiB segments (the test store's size) with other traffic, then let retention
    // delete every segment but the active one, as it would days later.
    await channel.assertQueue('filler', { durable: true });
    for (let i = 0; i < 300; i++) channel.publish('', 'filler', Buffer.alloc(1024, 1), { persistent: true });
    await channel.waitForConfirms();
    await first.close();
    // Unchanged definitions are snapshotted again after 6 intervals (hourly by default), so the
    // newest snapshot is always younger than any segment retention deletes by age.
    await new Promise((resolve) => setTimeout(resolve, 1500)); // two such snapshots at most
    const store = bed.cluster.broker.store;
    const { deletedSegments } = await store.runRetention(Date.now() + 10 * 24 * 3600 * 1000);
    assert.ok(deletedSegments >= 3, `retention deleted ${deletedSegments} segments`);

    await bed.restartServer();
    const next = await amqp.connect(bed.url);
    try {
      const again = await next.createConfirmChannel();
      await again.checkExchange('kept.events');
      assert.equal((await again.checkQueue('kept-q')).queue, 'kept-q');
      again.publish('kept.events', 'order.created', Buffer.from('routed'), { persistent: true });
      await again.waitForConfirms();
      let got: amqp.GetMessage | false = false;
      for (let tries = 0; tries < 100 && got === false; tries++) {
        got = await again.get('kept-q', { noAck: true });
        if (got === false) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(got !== false, 'the binding routes after the restart');
      assert.equal(got.content.toString(), 'routed');
      const gone = await next.createChannel();
      const closed = new Promise<Error & { code?: number }>((resolve) => gone.once('error', resolve));
      await gone.checkQueue('deleted-q').catch(() => undefined);
      assert.equal((await closed).code, 404, 'a deleted queue stays deleted');
    } finally {
      await next.close();
    }
  });
});
