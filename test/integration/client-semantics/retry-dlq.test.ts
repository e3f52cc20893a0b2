/**
 * Retries through %RETRY%<group>: a message the handler keeps failing is sent back
 * (CONSUMER_SEND_MSG_BACK, the broker choosing the delay level), redelivered with a growing reconsume
 * count, and after maxReconsumeTimes lands in %DLQ%<group>, where a pull consumer can read it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dlqTopicOf } from '../../../src/engine/common/topic.js';
import { Producer } from '../../../src/engine/client/producer.js';
import { PullConsumer } from '../../../src/engine/client/pull-consumer.js';
import { PushConsumer } from '../../../src/engine/client/push-consumer.js';
import { eventually } from '../../helpers/eventually.js';
import { type SemanticsCluster, startSemanticsCluster } from './harness.js';

const MAX_RECONSUME_TIMES = 2;

describe('retries and dead letters', () => {
  let cluster: SemanticsCluster;

  before(async () => {
    cluster = await startSemanticsCluster();
  });

  after(async () => {
    await cluster.close();
  });

  it('redelivers a failed message with a growing reconsume count, then moves it to the DLQ after maxReconsumeTimes', async () => {
    const topic = 'RetryDlq';
    const group = 'retry-group';
    await cluster.createTopic(topic, 2);
    const producer = new Producer({ group: 'retry-pg', nameServers: [cluster.namesrvAddress] });
    await producer.start();
    const attempts: { body: string; reconsumeTimes: number; topic: string }[] = [];
    const consumer = new PushConsumer({
      group,
      nameServers: [cluster.namesrvAddress],
      consumeFromWhere: 'FIRST_OFFSET',
      maxReconsumeTimes: MAX_RECONSUME_TIMES,
      rebalanceIntervalMs: 300,
      suspendTimeoutMs: 1000,
      pullRetryDelayMs: 100,
    });
    consumer.subscribe(topic, '*', (messages) => {
      for (const message of messages) {
        attempts.push({ body: message.body.toString(), reconsumeTimes: message.reconsumeTimes, topic: message.topic });
      }
      return messages.some((message) => message.body.toString() === 'poison') ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS';
    });
    await consumer.start();
    const dlqReader = new PullConsumer({ group: 'dlq-reader', nameServers: [cluster.namesrvAddress] });
    await dlqReader.start();
    try {
      const sent = await producer.send({ topic, body: Buffer.from('poison'), properties: { origin: 'test' } });
      await producer.send({ topic, body: Buffer.from('fine') });
      const poison = (): typeof attempts => attempts.filter((attempt) => attempt.body === 'poison');
      await eventually(() => poison().length === 1 + MAX_RECONSUME_TIMES, { timeoutMs: 10_000 });
      assert.deepEqual(
        poison().map((attempt) => attempt.reconsumeTimes),
        Array.from({ length: 1 + MAX_RECONSUME_TIMES }, (_, i) => i),
      );
      assert.ok(
        poison().every((attempt) => attempt.topic === topic),
        'retries show the original topic',
      );
      assert.equal(attempts.filter((attempt) => attempt.body === 'fine').length, 1);

      const dlq = dlqTopicOf(group);
      const found = await eventually(
        async () => {
          const queues = await dlqReader.fetchQueues(dlq);
          for (const queue of queues) {
            const result = await dlqReader.pull(queue, '*', 0, 32);
            const hit = result.messages.find((message) => message.body.toString() === 'poison');
            if (hit !== undefined) return hit;
          }
          throw new Error('not in the DLQ yet');
        },
        { timeoutMs: 8000, intervalMs: 100 },
      );
      assert.equal(found.properties['origin'], 'test');
      assert.equal(found.msgId, sent.msgId, 'the DLQ copy keeps the message id');
      // No further delivery once it is dead.
      assert.equal(poison().length, 1 + MAX_RECONSUME_TIMES);
    } finally {
      await dlqReader.shutdown();
      await consumer.shutdown();
      await producer.shutdown();
    }
  });
});
