/**
 * The issue-4 features the ali-ons npm client (RocketMQ 4.x) can use, against our NameServer and
 * broker: retries by consumer send-back (a handler that throws) ending in %DLQ%<group>, delay levels
 * (Message.delayTimeLevel, the DELAY property), and ordered sends by sharding key consumed in order
 * by our orderly PushConsumer. ali-ons has no transactions, pop or absolute delivery times that the
 * open-source broker knows (its setStartDeliverTime writes Aliyun's __STARTDELIVERTIME).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { dlqTopicOf } from '../../../src/engine/common/topic.js';
import { PullConsumer } from '../../../src/engine/client/pull-consumer.js';
import { type ConsumeResult, PushConsumer } from '../../../src/engine/client/push-consumer.js';
import { eventually } from '../../helpers/eventually.js';
import { closeOnsDefaultProducer, Ons, type OnsConsumer, type OnsProducer, onsOptions } from '../../helpers/ali-ons.js';
import { type SemanticsCluster, startSemanticsCluster } from '../client-semantics/harness.js';

/** Level 2 and level 5 of TEST_DELAY_LEVELS (the harness's broker option). */
const LEVEL_2_MS = 400;
const LEVEL_5_MS = 1000;
const LATE_BOUND_MS = 3000;
const MAX_RECONSUME_TIMES = 2;
const ORDER_QUEUES = 4;

/**
 * The queue ali-ons picks for a sharding key (md5 of the key, first 4 bytes big-endian, modulo the
 * queue count; lib/producer/topic_publish_info.js). ali-ons tests the chosen queue id for
 * truthiness, so a key that maps to queue 0 is spread round robin instead: keys here avoid queue 0.
 */
function onsShardingQueue(key: string, queueCount: number): number {
  return createHash('md5').update(key).digest().readUInt32BE(0) % queueCount;
}

describe('ali-ons with retries, delays and ordered sends', () => {
  let cluster: SemanticsCluster;
  let producer: OnsProducer;
  let common: Record<string, unknown>;
  const errors: Error[] = [];

  before(async () => {
    cluster = await startSemanticsCluster();
    common = onsOptions(cluster.namesrvAddress);
    producer = new Ons.Producer({ ...common, producerGroup: 'ons-semantics-producer' });
    producer.on('error', (err) => errors.push(err));
    await producer.ready();
  });

  after(async () => {
    await producer.close();
    // A client's start creates a process-wide producer for sending messages back; ali-ons never
    // closes it and it would keep the process alive.
    await closeOnsDefaultProducer();
    await cluster.close();
    // Expected: the handler failures of the retry test, and the missing %RETRY% route a group
    // reports until the broker has registered its retry topic with the NameServer.
    const unexpected = errors
      .map((err) => err.message)
      .filter((message) => !message.includes('%RETRY%') && !message.includes('handler refuses'));
    assert.deepEqual(unexpected, []);
  });

  function consumer(group: string): OnsConsumer {
    const created = new Ons.Consumer({
      ...common,
      consumerGroup: group,
      instanceName: group,
      consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
      maxReconsumeTimes: MAX_RECONSUME_TIMES,
    });
    created.on('error', (err) => errors.push(err));
    return created;
  }

  it('redelivers a message whose handler throws with a growing reconsume count, then dead-letters it for our PullConsumer', async () => {
    const topic = 'OnsRetry';
    const group = 'ons-retry';
    await cluster.createTopic(topic, 2);
    const attempts: { body: string; reconsumeTimes: number; topic: string }[] = [];
    const onsConsumer = consumer(group);
    onsConsumer.subscribe(topic, '*', async (message) => {
      const body = message.body.toString();
      attempts.push({ body, reconsumeTimes: message.reconsumeTimes, topic: message.topic });
      if (body === 'poison') throw new Error('handler refuses poison');
    });
    const dlqReader = new PullConsumer({ group: 'ons-dlq-reader', nameServers: [cluster.namesrvAddress] });
    await dlqReader.start();
    try {
      await onsConsumer.ready();
      const message = new Ons.Message(topic, 'TagP', 'poison');
      message.properties['origin'] = 'ali-ons';
      const sent = await producer.send(message);
      assert.equal(sent.sendStatus, 'SEND_OK');
      assert.equal((await producer.send(new Ons.Message(topic, 'TagF', 'fine'))).sendStatus, 'SEND_OK');

      const poison = (): typeof attempts => attempts.filter((attempt) => attempt.body === 'poison');
      await eventually(() => poison().length === 1 + MAX_RECONSUME_TIMES, { timeoutMs: 12_000 });
      assert.deepEqual(
        poison().map((attempt) => attempt.reconsumeTimes),
        Array.from({ length: 1 + MAX_RECONSUME_TIMES }, (_, i) => i),
      );
      assert.ok(
        poison().every((attempt) => attempt.topic === topic),
        'ali-ons shows retries under the original topic (RETRY_TOPIC)',
      );
      assert.equal(attempts.filter((attempt) => attempt.body === 'fine').length, 1);

      const dlq = dlqTopicOf(group);
      const dead = await eventually(
        async () => {
          for (const queue of await dlqReader.fetchQueues(dlq)) {
            const result = await dlqReader.pull(queue, '*', 0, 32);
            const hit = result.messages.find((each) => each.body.toString() === 'poison');
            if (hit !== undefined) return hit;
          }
          throw new Error(`poison is not in ${dlq} yet`);
        },
        { timeoutMs: 8000, intervalMs: 100 },
      );
      assert.equal(dead.properties['origin'], 'ali-ons', 'user properties survive retries');
      assert.equal(dead.allProperties['RETRY_TOPIC'], topic);
      assert.equal(dead.allProperties['ORIGIN_MESSAGE_ID'], sent.msgId, 'the DLQ copy names the original message');
      // RocketMQ counts the final send-back too: the DLQ copy has been consumed 1 + max times.
      assert.equal(dead.reconsumeTimes, MAX_RECONSUME_TIMES + 1);
      // Dead: no further delivery.
      assert.equal(poison().length, 1 + MAX_RECONSUME_TIMES);
      // Every failure went back through CONSUMER_SEND_MSG_BACK: ali-ons reports a refused send-back as
      // an error and then resends through its own producer, which the after hook would flag.
      assert.equal(errors.filter((err) => err.message.includes('handler refuses')).length, 1 + MAX_RECONSUME_TIMES);
    } finally {
      await dlqReader.shutdown();
      await onsConsumer.close();
    }
  });

  it('delivers delay-level messages set through Message.delayTimeLevel no earlier than their level', async () => {
    const topic = 'OnsDelay';
    await cluster.createTopic(topic, 2);
    const arrivals = new Map<string, { atMs: number; topic: string; tags: string }>();
    const onsConsumer = consumer('ons-delay');
    onsConsumer.subscribe(topic, '*', async (message) => {
      arrivals.set(message.body.toString(), { atMs: Date.now(), topic: message.topic, tags: message.tags });
    });
    try {
      await onsConsumer.ready();
      const due = new Map<string, number>();
      for (const [body, level, delayMs] of [
        ['level-2', 2, LEVEL_2_MS],
        ['level-5', 5, LEVEL_5_MS],
        ['now', 0, 0],
      ] as const) {
        const message = new Ons.Message(topic, 'TagD', body);
        if (level > 0) message.delayTimeLevel = level;
        const sentAtMs = Date.now();
        assert.equal((await producer.send(message)).sendStatus, 'SEND_OK');
        due.set(body, sentAtMs + delayMs);
      }
      await eventually(() => arrivals.size === due.size, { timeoutMs: 10_000 });
      for (const [body, dueAtMs] of due) {
        const arrival = arrivals.get(body);
        assert.ok(arrival);
        assert.equal(arrival.topic, topic);
        assert.equal(arrival.tags, 'TagD');
        assert.ok(arrival.atMs >= dueAtMs, `${body} arrived ${dueAtMs - arrival.atMs} ms early`);
        assert.ok(arrival.atMs <= dueAtMs + LATE_BOUND_MS, `${body} arrived ${arrival.atMs - dueAtMs} ms late`);
      }
      assert.ok(
        (arrivals.get('level-5')?.atMs ?? 0) > (arrivals.get('level-2')?.atMs ?? 0),
        'the longer level arrives later',
      );
    } finally {
      await onsConsumer.close();
    }
  });

  it('sends by sharding key to one queue per key, consumed in key order by our orderly PushConsumer', async () => {
    const topic = 'OnsOrdered';
    const steps = 30;
    await cluster.createTopic(topic, ORDER_QUEUES);
    const keys = Array.from({ length: 40 }, (_, i) => `order-${i}`)
      .filter((key) => onsShardingQueue(key, ORDER_QUEUES) !== 0)
      .slice(0, 6);
    assert.equal(keys.length, 6);
    const done = new Map<string, number[]>();
    const queueOfKey = new Map<string, Set<number>>();
    const inFlight = new Map<number, number>();
    let maxInFlightPerQueue = 0;
    const ordered = new PushConsumer({
      group: 'ons-ordered',
      nameServers: [cluster.namesrvAddress],
      orderly: true,
      consumeFromWhere: 'FIRST_OFFSET',
      rebalanceIntervalMs: 300,
      lockIntervalMs: 300,
      suspendTimeoutMs: 1000,
      pullRetryDelayMs: 100,
    });
    ordered.subscribe(topic, '*', async (messages): Promise<ConsumeResult> => {
      for (const message of messages) {
        inFlight.set(message.queueId, (inFlight.get(message.queueId) ?? 0) + 1);
        maxInFlightPerQueue = Math.max(maxInFlightPerQueue, inFlight.get(message.queueId) ?? 0);
        await new Promise((resolve) => setImmediate(resolve));
        const [key, step] = message.body.toString().split('#') as [string, string];
        done.set(key, [...(done.get(key) ?? []), Number(step)]);
        queueOfKey.set(key, (queueOfKey.get(key) ?? new Set()).add(message.queueId));
        inFlight.set(message.queueId, (inFlight.get(message.queueId) ?? 1) - 1);
      }
      return 'CONSUME_SUCCESS';
    });
    await ordered.start();
    try {
      // Keys interleaved step by step, so every queue sees several keys mixed.
      for (let step = 0; step < steps; step++) {
        for (const key of keys) {
          const message = new Ons.Message(topic, 'TagO', `${key}#${step}`);
          message.shardingKey = key;
          const result = await producer.send(message);
          assert.equal(result.sendStatus, 'SEND_OK');
          assert.equal(
            Number(result.messageQueue.queueId),
            onsShardingQueue(key, ORDER_QUEUES),
            `${key} sent to its queue`,
          );
        }
      }
      await eventually(() => keys.every((key) => (done.get(key)?.length ?? 0) >= steps), { timeoutMs: 10_000 });
      for (const key of keys) {
        assert.deepEqual(
          done.get(key),
          Array.from({ length: steps }, (_, i) => i),
          `${key} consumed in order`,
        );
        assert.deepEqual([...(queueOfKey.get(key) ?? [])], [onsShardingQueue(key, ORDER_QUEUES)]);
      }
      assert.equal(maxInFlightPerQueue, 1, 'one handler call per queue at a time');
    } finally {
      await ordered.shutdown();
    }
  });
});
