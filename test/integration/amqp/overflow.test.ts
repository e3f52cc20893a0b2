/**
 * x-max-length / x-max-length-bytes with x-overflow, through amqplib: drop-head keeps the newest
 * messages; reject-publish refuses what does not fit (basic.nack under confirms, dropped without),
 * while other queues bound to the same exchange still receive it; reject-publish-dlx also
 * dead-letters the refused message.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConfirmChannel, GetMessage } from 'amqplib';
import { amqpConnectionForSuite } from '../../helpers/amqp-server.js';
import { eventually } from '../../helpers/eventually.js';

/** Publishes each body and resolves with 'ack' or 'nack' per message, in order. */
async function publishAll(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  bodies: readonly string[],
): Promise<('ack' | 'nack')[]> {
  return Promise.all(
    bodies.map(
      (body) =>
        new Promise<'ack' | 'nack'>((resolve) => {
          channel.publish(exchange, routingKey, Buffer.from(body), {}, (err: unknown) =>
            resolve(err === null || err === undefined ? 'ack' : 'nack'),
          );
        }),
    ),
  );
}

describe('AMQP x-max-length with x-overflow', () => {
  const connection = amqpConnectionForSuite('in-process');

  async function drain(channel: ConfirmChannel, queue: string, expected: number): Promise<string[]> {
    const bodies: string[] = [];
    await eventually(
      async () => {
        for (;;) {
          const message: GetMessage | false = await channel.get(queue, { noAck: true });
          if (message === false) break;
          bodies.push(message.content.toString());
        }
        assert.equal(bodies.length, expected, `bodies so far: ${bodies.join(',')}`);
      },
      { timeoutMs: 8000 },
    );
    // Nothing more arrives later.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await channel.get(queue, { noAck: true }), false);
    return bodies;
  }

  it('reject-publish: nacks the publishes past x-max-length and keeps the first ones', async () => {
    const channel = await connection().createConfirmChannel();
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      arguments: { 'x-max-length': 2, 'x-overflow': 'reject-publish' },
    });
    assert.deepEqual(await publishAll(channel, '', queue, ['m1', 'm2', 'm3', 'm4', 'm5']), [
      'ack',
      'ack',
      'nack',
      'nack',
      'nack',
    ]);
    // Published in separate rounds: stored-but-not-yet-fetched messages count too.
    assert.deepEqual(await publishAll(channel, '', queue, ['m6']), ['nack']);
    assert.deepEqual(await drain(channel, queue, 2), ['m1', 'm2']);
    // Room again once consumed.
    assert.deepEqual(await publishAll(channel, '', queue, ['m7']), ['ack']);
    assert.deepEqual(await drain(channel, queue, 1), ['m7']);
    await channel.close();
  });

  it('reject-publish: a full queue nacks, other queues bound to the exchange still get the message', async () => {
    const channel = await connection().createConfirmChannel();
    await channel.assertExchange('overflow-fan', 'fanout', { durable: false });
    const { queue: small } = await channel.assertQueue('', {
      exclusive: true,
      arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' },
    });
    const { queue: big } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(small, 'overflow-fan', '');
    await channel.bindQueue(big, 'overflow-fan', '');
    assert.deepEqual(await publishAll(channel, 'overflow-fan', '', ['a', 'b', 'c']), ['ack', 'nack', 'nack']);
    assert.deepEqual(await drain(channel, small, 1), ['a']);
    assert.deepEqual(await drain(channel, big, 3), ['a', 'b', 'c']);
    await channel.close();
  });

  it('reject-publish without confirms drops the message and keeps the channel open', async () => {
    const channel = await connection().createChannel();
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' },
    });
    for (const body of ['first', 'second', 'third']) channel.sendToQueue(queue, Buffer.from(body));
    await eventually(async () => (await channel.checkQueue(queue)).messageCount === 1, { timeoutMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const message = await channel.get(queue, { noAck: true });
    assert.ok(message !== false);
    assert.equal(message.content.toString(), 'first');
    assert.equal(await channel.get(queue, { noAck: true }), false);
    await channel.close();
  });

  it('reject-publish with x-max-length-bytes counts body bytes', async () => {
    const channel = await connection().createConfirmChannel();
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      arguments: { 'x-max-length-bytes': 10, 'x-overflow': 'reject-publish' },
    });
    assert.deepEqual(await publishAll(channel, '', queue, ['aaaa', 'bbbb', 'cccc', 'dd']), [
      'ack',
      'ack',
      'nack',
      'ack',
    ]);
    assert.deepEqual(await drain(channel, queue, 3), ['aaaa', 'bbbb', 'dd']);
    await channel.close();
  });

  it('drop-head with x-max-length-bytes drops the oldest until the bytes fit', async () => {
    const channel = await connection().createConfirmChannel();
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      arguments: { 'x-max-length-bytes': 10, 'x-overflow': 'drop-head' },
    });
    assert.deepEqual(await publishAll(channel, '', queue, ['1111', '2222', '3333', '4444', '5555']), [
      'ack',
      'ack',
      'ack',
      'ack',
      'ack',
    ]);
    await eventually(async () => (await channel.checkQueue(queue)).messageCount === 2, { timeoutMs: 5000 });
    assert.deepEqual(await drain(channel, queue, 2), ['4444', '5555']);
    await channel.close();
  });

  it('reject-publish-dlx dead-letters the refused message with reason maxlen', async () => {
    const channel = await connection().createConfirmChannel();
    await channel.assertExchange('overflow-dlx', 'direct', { durable: false });
    const { queue: parking } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(parking, 'overflow-dlx', 'full');
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      arguments: {
        'x-max-length': 1,
        'x-overflow': 'reject-publish-dlx',
        'x-dead-letter-exchange': 'overflow-dlx',
        'x-dead-letter-routing-key': 'full',
      },
    });
    assert.deepEqual(await publishAll(channel, '', queue, ['kept', 'refused']), ['ack', 'nack']);
    const dead = await eventually(
      async () => {
        const message = await channel.get(parking, { noAck: true });
        assert.ok(message !== false);
        return message;
      },
      { timeoutMs: 8000 },
    );
    assert.equal(dead.content.toString(), 'refused');
    const deaths = dead.properties.headers?.['x-death'] as { reason: string; queue: string }[];
    assert.equal(deaths[0]?.reason, 'maxlen');
    assert.equal(deaths[0]?.queue, queue);
    assert.deepEqual(await drain(channel, queue, 1), ['kept']);
    await channel.close();
  });
});
