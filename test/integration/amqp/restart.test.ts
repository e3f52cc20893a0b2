import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import { eventually } from '../../helpers/eventually.js';
import { startAmqp, type AmqpTestBed } from './harness.js';

describe('AMQP definitions and messages across a server restart', () => {
  let bed: AmqpTestBed;
  before(async () => {
    bed = await startAmqp('tcp');
  });
  after(async () => {
    await bed.close();
  });

  it('keeps durable exchanges, queues, bindings and unacked messages; forgets transient ones', async () => {
    const first = await amqp.connect(bed.url);
    const channel = await first.createConfirmChannel();
    await channel.assertExchange('durable.events', 'topic', { durable: true });
    await channel.assertExchange('transient.events', 'topic', { durable: false });
    await channel.assertQueue('durable-q', { durable: true });
    await channel.assertQueue('transient-q', { durable: false });
    await channel.bindQueue('durable-q', 'durable.events', 'user.*');
    await channel.assertQueue('gone-q', { durable: true });
    await channel.deleteQueue('gone-q');
    channel.publish('durable.events', 'user.created', Buffer.from('acked'), { persistent: true });
    channel.publish('durable.events', 'user.created', Buffer.from('unacked'), { persistent: true });
    await channel.waitForConfirms();
    const firstGet = await eventually(
      async () => {
        const message = await channel.get('durable-q');
        assert.ok(message !== false);
        return message;
      },
      { timeoutMs: 8000 },
    );
    assert.equal(firstGet.content.toString(), 'acked');
    channel.ack(firstGet);
    const second = await channel.get('durable-q');
    assert.ok(second !== false);
    assert.equal(second.content.toString(), 'unacked');
    await eventually(async () => (await channel.checkQueue('durable-q')).messageCount === 0);
    await bed.restartServer();
    await first.close().catch(() => undefined);

    const next = await amqp.connect(bed.url);
    const again = await next.createChannel();
    again.on('error', () => undefined);
    await again.checkExchange('durable.events');
    const ok = await again.checkQueue('durable-q');
    assert.equal(ok.queue, 'durable-q');
    const redelivered = await eventually(
      async () => {
        const message = await again.get('durable-q', { noAck: true });
        assert.ok(message !== false);
        return message;
      },
      { timeoutMs: 8000 },
    );
    assert.equal(redelivered.content.toString(), 'unacked');
    assert.equal(redelivered.fields.redelivered, true);
    assert.equal(await again.get('durable-q'), false);
    // The binding survived: a new publish is routed.
    again.publish('durable.events', 'user.deleted', Buffer.from('after-restart'));
    const routed = await eventually(
      async () => {
        const message = await again.get('durable-q', { noAck: true });
        assert.ok(message !== false);
        return message;
      },
      { timeoutMs: 8000 },
    );
    assert.equal(routed.content.toString(), 'after-restart');
    await assert.rejects(again.checkQueue('transient-q'), (err: Error & { code?: number }) => err.code === 404);
    const third = await next.createChannel();
    third.on('error', () => undefined);
    await assert.rejects(third.checkExchange('transient.events'), (err: Error & { code?: number }) => err.code === 404);
    const fourth = await next.createChannel();
    fourth.on('error', () => undefined);
    await assert.rejects(fourth.checkQueue('gone-q'), (err: Error & { code?: number }) => err.code === 404);
    await next.close();
  });
});
