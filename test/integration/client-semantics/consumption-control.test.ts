/**
 * Consumption control: a group's lag per queue (max offset minus committed offset), and resetting a
 * group's offsets to a point in time, for a group that is offline and for one whose consumers are
 * online (they are told through RESET_CONSUMER_CLIENT_OFFSET and consume again from there).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AdminClient } from '../../../src/engine/client/admin-client.js';
import { Producer } from '../../../src/engine/client/producer.js';
import { PushConsumer } from '../../../src/engine/client/push-consumer.js';
import { eventually } from '../../helpers/eventually.js';
import { type SemanticsCluster, startSemanticsCluster } from './harness.js';

describe('consumption control', () => {
  let cluster: SemanticsCluster;
  let producer: Producer;
  let admin: AdminClient;

  before(async () => {
    cluster = await startSemanticsCluster();
    producer = new Producer({ group: 'control-pg', nameServers: [cluster.namesrvAddress] });
    await producer.start();
    admin = new AdminClient({ nameServers: [cluster.namesrvAddress] });
    await admin.start();
  });

  after(async () => {
    await admin.shutdown();
    await producer.shutdown();
    await cluster.close();
  });

  function consumer(group: string): PushConsumer {
    const member = new PushConsumer({
      group,
      nameServers: [cluster.namesrvAddress],
      consumeFromWhere: 'FIRST_OFFSET',
      rebalanceIntervalMs: 300,
      offsetPersistIntervalMs: 200,
      suspendTimeoutMs: 1000,
      pullRetryDelayMs: 100,
    });
    return member;
  }

  /** Starts a member of `group` on `topic` that appends every body it consumes to `bodies`. */
  async function startCollecting(group: string, topic: string, bodies: string[]): Promise<PushConsumer> {
    const member = consumer(group);
    member.subscribe(topic, '*', (messages) => {
      for (const message of messages) bodies.push(message.body.toString());
      return 'CONSUME_SUCCESS';
    });
    await member.start();
    return member;
  }

  async function sendMany(topic: string, prefix: string, count: number): Promise<void> {
    for (let i = 0; i < count; i++) await producer.send({ topic, body: Buffer.from(`${prefix}-${i}`) });
  }

  it('reports per-queue lag as max offset minus the committed offset', async () => {
    const topic = 'Lag';
    const group = 'lag-group';
    await cluster.createTopic(topic, 4);
    await sendMany(topic, 'first', 12);
    const seen: string[] = [];
    const member = await startCollecting(group, topic, seen);
    await eventually(() => seen.length === 12, { timeoutMs: 8000 });
    await member.shutdown();
    await eventually(async () => (await admin.consumerLag(group, topic)).every((queue) => queue.lag === 0));
    await sendMany(topic, 'second', 5);
    const lag = await admin.consumerLag(group, topic);
    assert.equal(lag.length, 4);
    assert.equal(
      lag.reduce((sum, queue) => sum + queue.lag, 0),
      5,
    );
    assert.equal(
      lag.reduce((sum, queue) => sum + queue.brokerOffset, 0),
      17,
    );
    for (const queue of lag) {
      assert.equal(queue.brokerName, 'broker-a');
      assert.equal(queue.lag, queue.brokerOffset - queue.consumerOffset);
    }
    const stranger = await admin.consumerLag('no-such-group', topic);
    // A group that never committed lags by everything stored (RocketMQ answers offset 0 or none).
    assert.equal(
      stranger.reduce((sum, queue) => sum + queue.lag, 0),
      17,
    );
  });

  it('resets an offline group to a timestamp so that its next consumer starts there', async () => {
    const topic = 'ResetOffline';
    const group = 'reset-offline';
    await cluster.createTopic(topic, 2);
    await sendMany(topic, 'old', 4);
    const seen: string[] = [];
    const first = await startCollecting(group, topic, seen);
    await eventually(() => seen.length === 4, { timeoutMs: 8000 });
    const resetPoint = Date.now() + 1;
    await eventually(() => Date.now() > resetPoint);
    await sendMany(topic, 'new', 3);
    await eventually(() => seen.length === 7, { timeoutMs: 8000 });
    await first.shutdown();

    const offsets = await admin.resetOffsetByTimestamp(group, topic, resetPoint);
    assert.equal(offsets.length, 2);
    const lag = await admin.consumerLag(group, topic);
    assert.equal(
      lag.reduce((sum, queue) => sum + queue.lag, 0),
      3,
    );

    const again: string[] = [];
    const second = await startCollecting(group, topic, again);
    try {
      await eventually(() => again.length === 3, { timeoutMs: 8000 });
      assert.deepEqual([...again].sort(), ['new-0', 'new-1', 'new-2']);
    } finally {
      await second.shutdown();
    }
  });

  it('resets an online group to a timestamp and its consumer consumes again from there', async () => {
    const topic = 'ResetOnline';
    const group = 'reset-online';
    await cluster.createTopic(topic, 2);
    await sendMany(topic, 'old', 4);
    const seen: string[] = [];
    const member = await startCollecting(group, topic, seen);
    try {
      await eventually(() => seen.length === 4, { timeoutMs: 8000 });
      const resetPoint = Date.now() + 1;
      await eventually(() => Date.now() > resetPoint);
      await sendMany(topic, 'new', 3);
      await eventually(() => seen.length === 7, { timeoutMs: 8000 });
      await admin.resetOffsetByTimestamp(group, topic, resetPoint);
      await eventually(() => seen.length === 10, { timeoutMs: 8000 });
      assert.deepEqual(seen.slice(7).sort(), ['new-0', 'new-1', 'new-2']);
      // The reset sticks: the consumer's own commits do not undo it, and nothing older comes back.
      await eventually(async () => (await admin.consumerLag(group, topic)).every((queue) => queue.lag === 0));
      assert.equal(seen.length, 10);
    } finally {
      await member.shutdown();
    }
  });
});
