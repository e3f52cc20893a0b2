/**
 * Delayed messages: a delay level (the broker configured with short test levels) and an absolute
 * delivery time (TIMER_DELIVER_MS, also via delayMs) are delivered no earlier than due and within a
 * loose bound, to the topic they were sent to.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Producer } from '../../../src/engine/client/producer.js';
import { PushConsumer } from '../../../src/engine/client/push-consumer.js';
import { eventually } from '../../helpers/eventually.js';
import { type SemanticsCluster, startSemanticsCluster } from './harness.js';

/** Level 2 of TEST_DELAY_LEVELS. */
const LEVEL_2_MS = 400;
const LATE_BOUND_MS = 2500;

describe('delayed messages', () => {
  let cluster: SemanticsCluster;

  before(async () => {
    cluster = await startSemanticsCluster();
  });

  after(async () => {
    await cluster.close();
  });

  it('delivers delay-level, deliverAt and delayMs messages no earlier than due', async () => {
    const topic = 'Delayed';
    await cluster.createTopic(topic, 2);
    const producer = new Producer({ group: 'delay-pg', nameServers: [cluster.namesrvAddress] });
    await producer.start();
    const arrivals = new Map<string, { atMs: number; topic: string; properties: Record<string, string> }>();
    const consumer = new PushConsumer({
      group: 'delay-consumer',
      nameServers: [cluster.namesrvAddress],
      consumeFromWhere: 'FIRST_OFFSET',
      rebalanceIntervalMs: 300,
      suspendTimeoutMs: 1000,
      pullRetryDelayMs: 100,
    });
    consumer.subscribe(topic, '*', (messages) => {
      for (const message of messages) {
        arrivals.set(message.body.toString(), {
          atMs: Date.now(),
          topic: message.topic,
          properties: message.properties,
        });
      }
      return 'CONSUME_SUCCESS';
    });
    await consumer.start();
    try {
      const sentAt = Date.now();
      const dueAt = new Map<string, number>([
        ['level', sentAt + LEVEL_2_MS],
        ['at', sentAt + 900],
        ['ms', sentAt + 600],
        ['now', sentAt],
      ]);
      await producer.send({ topic, body: Buffer.from('level'), properties: { k: 'v' } }, { delayLevel: 2 });
      await producer.send({ topic, body: Buffer.from('at') }, { deliverAt: sentAt + 900 });
      await producer.send({ topic, body: Buffer.from('ms') }, { delayMs: 600 });
      await producer.send({ topic, body: Buffer.from('now') });
      await eventually(() => arrivals.size === 4, { timeoutMs: 8000 });
      for (const [body, due] of dueAt) {
        const arrival = arrivals.get(body);
        assert.ok(arrival);
        assert.equal(arrival.topic, topic);
        assert.ok(arrival.atMs >= due, `${body} arrived ${due - arrival.atMs} ms early`);
        assert.ok(arrival.atMs <= due + LATE_BOUND_MS, `${body} arrived ${arrival.atMs - due} ms late`);
      }
      assert.equal(arrivals.get('level')?.properties['k'], 'v', 'user properties survive the delay');
    } finally {
      await consumer.shutdown();
      await producer.shutdown();
    }
  });
});
