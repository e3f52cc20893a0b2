import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import { encodeContentCommand } from '../../../src/adapters/amqp/frame-writer.js';
import { RawClient } from '../../bad-input/amqp/raw-client.js';
import { eventually } from '../../helpers/eventually.js';
import { startAmqp, type AmqpTestBed } from './harness.js';

describe('AMQP publisher confirms, coalesced', () => {
  let bed: AmqpTestBed;
  before(async () => {
    bed = await startAmqp('in-process');
  });
  after(async () => {
    await bed.close();
  });

  it('confirms publishes stored together with one multiple ack, as RabbitMQ does', async () => {
    const client = await RawClient.handshake(bed.server.port);
    try {
      await client.openChannel(1);
      client.send(1, {
        name: 'queue.declare',
        queue: 'confirm-coalesce',
        passive: false,
        durable: true,
        exclusive: false,
        autoDelete: false,
        noWait: false,
        arguments: {},
      });
      await client.waitFor('queue.declare-ok', 1);
      client.send(1, { name: 'confirm.select', noWait: false });
      await client.waitFor('confirm.select-ok', 1);
      // 50 publishes in one socket write: the server stores them in one turn.
      const publish = {
        name: 'basic.publish' as const,
        exchange: '',
        routingKey: 'confirm-coalesce',
        mandatory: false,
        immediate: false,
      };
      const frames = Array.from({ length: 50 }, (_, index) =>
        encodeContentCommand(1, publish, { deliveryMode: 2 }, Buffer.from(`m${index}`), 131072),
      ).flat();
      client.write(Buffer.concat(frames));
      const confirmed = (): number[] =>
        client.frames.flatMap((frame) => (frame.method?.name === 'basic.ack' ? [frame.method.deliveryTag] : []));
      await eventually(() => assert.equal(Math.max(0, ...confirmed()), 50));
      const acks = client.frames.filter((frame) => frame.method?.name === 'basic.ack');
      assert.ok(acks.length < 10, `${acks.length} basic.ack frames for 50 publishes`);
      assert.ok(acks.some((frame) => frame.method?.name === 'basic.ack' && frame.method.multiple));
    } finally {
      client.destroy();
    }
  });

  it('lets amqplib count every confirm of a window, nacks included', async () => {
    const connection = await amqp.connect(bed.url);
    try {
      const channel = await connection.createConfirmChannel();
      await channel.assertQueue('confirm-window', {
        durable: true,
        arguments: { 'x-max-length': 5, 'x-overflow': 'reject-publish' },
      });
      const outcomes = await Promise.all(
        Array.from(
          { length: 40 },
          (_, index) =>
            new Promise<string>((resolve) =>
              channel.publish('', 'confirm-window', Buffer.from(`m${index}`), { persistent: true }, (err) =>
                resolve(err === null || err === undefined ? 'ack' : 'nack'),
              ),
            ),
        ),
      );
      assert.equal(outcomes.filter((outcome) => outcome === 'ack').length, 5);
      assert.equal(outcomes.filter((outcome) => outcome === 'nack').length, 35);
    } finally {
      await connection.close();
    }
  });
});
