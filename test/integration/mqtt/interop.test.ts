/**
 * MQTT and native RocketMQ clients on one engine: topic/tag mapping both ways, and wildcard
 * filters (within a topic and across topics).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Producer, PushConsumer, type MessageExt } from '../../../src/engine/client/index.js';
import { eventually } from '../../helpers/eventually.js';
import { collect, type MqttHarness, startMqttHarness } from './mqtt-harness.js';

describe('MQTT and RocketMQ clients share messages', () => {
  let harness: MqttHarness;
  let producer: Producer;
  before(async () => {
    harness = await startMqttHarness();
    producer = new Producer({ group: 'native-pg', nameServers: [harness.cluster.namesrvAddress] });
    await producer.start();
  });
  after(async () => {
    await producer.shutdown();
    await harness.close();
  });

  it('hands an MQTT publish to a native PushConsumer as topic a, tag b.c, with the MQTT name kept', async () => {
    const publisher = await harness.connect();
    await publisher.publishAsync('interop1/warm', 'create topic', { qos: 1 });
    const received: MessageExt[] = [];
    const consumer = new PushConsumer({
      group: 'native-cg-1',
      nameServers: [harness.cluster.namesrvAddress],
      consumeFromWhere: 'FIRST_OFFSET',
      rebalanceIntervalMs: 300,
      suspendTimeoutMs: 1000,
    });
    consumer.subscribe('interop1', 'b.c || b.*', (messages) => {
      received.push(...messages);
      return 'CONSUME_SUCCESS';
    });
    await consumer.start();
    try {
      await publisher.publishAsync('interop1/b/c', 'from mqtt', { qos: 1 });
      await eventually(() => received.length === 1, { timeoutMs: 8000 });
      const message = received[0] as MessageExt;
      assert.equal(message.topic, 'interop1');
      assert.equal(message.tags, 'b.c');
      assert.equal(message.body.toString(), 'from mqtt');
      assert.equal(message.properties['mqtt.topic'], 'interop1/b/c');
      assert.equal(message.properties['mqtt.qos'], '1');
    } finally {
      await consumer.shutdown();
      await publisher.endAsync();
    }
  });

  it('delivers a native send with tag x.y to MQTT as topic/x/y and a tagless one as topic', async () => {
    await producer.send({ topic: 'interop2', body: Buffer.from('warm') });
    const subscriber = await harness.connect();
    const received = collect(subscriber);
    await subscriber.subscribeAsync('interop2/#', { qos: 1 });
    await producer.send({ topic: 'interop2', tags: 'x.y', body: Buffer.from('tagged') });
    await producer.send({ topic: 'interop2', body: Buffer.from('untagged') });
    await eventually(() => received.length === 2, { timeoutMs: 8000 });
    assert.deepEqual(
      received.map((m) => [m.topic, m.payload, m.qos]),
      [
        ['interop2/x/y', 'tagged', 1],
        ['interop2', 'untagged', 1],
      ],
    );
    await subscriber.endAsync();
  });

  it('matches + and # within a topic and leaves other names out', async () => {
    const subscriber = await harness.connect();
    const plus = collect(subscriber);
    await subscriber.subscribeAsync({ 'wild/+/temp': { qos: 1 } });
    const publisher = await harness.connect();
    for (const name of ['wild/kitchen/temp', 'wild/kitchen/humidity', 'wild/hall/temp', 'wild/a/b/temp', 'wild/temp']) {
      await publisher.publishAsync(name, name, { qos: 1 });
    }
    await eventually(() => plus.length === 2, { timeoutMs: 8000 });
    assert.deepEqual(plus.map((m) => m.topic).sort(), ['wild/hall/temp', 'wild/kitchen/temp']);
    await subscriber.endAsync();
    await publisher.endAsync();
  });

  it('subscribes across topics with a first-level wildcard, including topics created later', async () => {
    const subscriber = await harness.connect();
    const received = collect(subscriber);
    await subscriber.subscribeAsync('+/status', { qos: 1 });
    const publisher = await harness.connect();
    await publisher.publishAsync('devA/status', 'a', { qos: 1 });
    await publisher.publishAsync('devB/status', 'b', { qos: 1 });
    await publisher.publishAsync('devB/other', 'x', { qos: 1 });
    await producer.send({ topic: 'devC', tags: 'status', body: Buffer.from('c') });
    await eventually(() => received.length === 3, { timeoutMs: 10_000 });
    assert.deepEqual(received.map((m) => `${m.topic}=${m.payload}`).sort(), [
      'devA/status=a',
      'devB/status=b',
      'devC/status=c',
    ]);
    await subscriber.endAsync();
    await publisher.endAsync();
  });

  it('delivers at the lower of publish and subscription QoS', async () => {
    const subscriber = await harness.connect();
    const received = collect(subscriber);
    await subscriber.subscribeAsync('downgrade/#', { qos: 1 });
    const publisher = await harness.connect();
    await publisher.publishAsync('downgrade/x', 'two', { qos: 2 });
    await publisher.publishAsync('downgrade/y', 'zero', { qos: 0 });
    await eventually(() => received.length === 2, { timeoutMs: 8000 });
    assert.deepEqual(received.map((m) => [m.payload, m.qos]).sort(), [
      ['two', 1],
      ['zero', 0],
    ]);
    await subscriber.endAsync();
    await publisher.endAsync();
  });
});
