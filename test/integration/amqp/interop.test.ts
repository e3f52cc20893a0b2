import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqp, { type ConsumeMessage } from 'amqplib';
import { Producer, PushConsumer, type MessageExt } from '../../../src/engine/client/index.js';
import { eventually } from '../../helpers/eventually.js';
import { startAmqp, type AmqpTestBed } from './harness.js';

describe('AMQP and RocketMQ clients exchange messages through the engine', () => {
  let bed: AmqpTestBed;
  before(async () => {
    bed = await startAmqp('tcp');
  });
  after(async () => {
    await bed.close();
  });

  it('delivers an AMQP publish to a PushConsumer with topic = exchange and tag = routing key', async () => {
    const connection = await amqp.connect(bed.url);
    const channel = await connection.createConfirmChannel();
    await channel.assertExchange('payments', 'topic', { durable: true });
    const received: MessageExt[] = [];
    const consumer = new PushConsumer({
      group: 'native-payments',
      nameServers: [bed.cluster.namesrvAddress],
      consumeFromWhere: 'FIRST_OFFSET',
      rebalanceIntervalMs: 300,
      suspendTimeoutMs: 1000,
      pullRetryDelayMs: 200,
      shutdownTimeoutMs: 200,
    });
    consumer.subscribe('payments', 'card.*', (messages) => {
      received.push(...messages);
      return 'CONSUME_SUCCESS';
    });
    try {
      channel.publish('payments', 'card.visa', Buffer.from('{"amount":5}'), {
        contentType: 'application/json',
        messageId: 'pay-1',
        headers: { region: 'eu' },
      });
      channel.publish('payments', 'wire.sepa', Buffer.from('other'));
      await channel.waitForConfirms();
      await consumer.start();
      await eventually(() => received.length >= 1, { timeoutMs: 10_000 });
      const message = received[0] as MessageExt;
      assert.equal(message.topic, 'payments');
      assert.equal(message.tags, 'card.visa');
      assert.equal(message.body.toString(), '{"amount":5}');
      assert.equal(message.properties['amqp.content-type'], 'application/json');
      assert.equal(message.properties['region'], 'eu');
      assert.deepEqual(message.keys, ['pay-1']);
      assert.equal(received.filter((m) => m.tags === 'wire.sepa').length, 0);
    } finally {
      await consumer.shutdown();
      await connection.close();
    }
  });

  it('delivers a RocketMQ producer message to an AMQP queue bound to the topic', async () => {
    const connection = await amqp.connect(bed.url);
    const channel = await connection.createChannel();
    await channel.assertExchange('inventory', 'direct', { durable: false });
    const { queue } = await channel.assertQueue('', { exclusive: true });
    await channel.bindQueue(queue, 'inventory', 'restock');
    const got: ConsumeMessage[] = [];
    await channel.consume(
      queue,
      (message) => {
        if (message !== null) got.push(message);
      },
      { noAck: true },
    );
    const producer = new Producer({ group: 'native-inventory', nameServers: [bed.cluster.namesrvAddress] });
    await producer.start();
    try {
      await producer.send({
        topic: 'inventory',
        tags: 'restock',
        body: Buffer.from('sku-42'),
        properties: { warehouse: 'w1' },
      });
      await producer.send({ topic: 'inventory', tags: 'audit', body: Buffer.from('skip') });
      await eventually(() => got.length === 1, { timeoutMs: 10_000 });
      const message = got[0] as ConsumeMessage;
      assert.equal(message.content.toString(), 'sku-42');
      assert.equal(message.fields.exchange, 'inventory');
      assert.equal(message.fields.routingKey, 'restock');
      assert.equal(message.properties.headers?.['warehouse'], 'w1');
    } finally {
      await producer.shutdown();
      await connection.close();
    }
  });
});
