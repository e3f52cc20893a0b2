/**
 * Orderly push consumers: two members of a group lock their queues at the broker and consume each
 * queue in order, one handler call at a time; a message the handler fails is retried in place and
 * holds its queue back; when a member leaves, the other takes its queues over and the order holds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Message } from '../../../src/engine/common/message.js';
import type { MessageQueue } from '../../../src/engine/client/route.js';
import { Producer } from '../../../src/engine/client/producer.js';
import { type ConsumeResult, PushConsumer } from '../../../src/engine/client/push-consumer.js';
import { queueKey } from '../../../src/engine/client/route.js';
import { eventually } from '../../helpers/eventually.js';
import { type SemanticsCluster, startSemanticsCluster } from './harness.js';

const ORDERS = 8;
const STEPS = 25;
const QUEUES = 4;

describe('orderly consumption', () => {
  let cluster: SemanticsCluster;

  before(async () => {
    cluster = await startSemanticsCluster();
  });

  after(async () => {
    await cluster.close();
  });

  it('keeps per-queue order across two members, one call per queue at a time, and a failing message blocks only its queue', async () => {
    const topic = 'Orderly';
    const group = 'orderly-group';
    await cluster.createTopic(topic, QUEUES);
    const producer = new Producer({ group: 'orderly-pg', nameServers: [cluster.namesrvAddress] });
    await producer.start();

    /** Per order id, the steps handled successfully, in handling order. */
    const done = new Map<number, number[]>();
    /** Per queue, every handler call: `order:step` plus whether it failed. */
    const calls = new Map<string, { id: string; failed: boolean }[]>();
    const inFlight = new Map<string, number>();
    let maxInFlightPerQueue = 0;
    const failing = '1:5';
    let failuresLeft = 3;

    const handler = async (
      messages: { body: Buffer; queueId: number; brokerName: string; topic: string }[],
    ): Promise<ConsumeResult> => {
      assert.equal(messages.length, 1);
      const message = messages[0] as (typeof messages)[number];
      const key = queueKey(message);
      inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
      maxInFlightPerQueue = Math.max(maxInFlightPerQueue, inFlight.get(key) ?? 0);
      try {
        await new Promise((resolve) => setImmediate(resolve));
        const id = message.body.toString();
        const fail = id === failing && failuresLeft > 0;
        calls.set(key, [...(calls.get(key) ?? []), { id, failed: fail }]);
        if (fail) {
          failuresLeft--;
          return failuresLeft % 2 === 0 ? 'SUSPEND_CURRENT_QUEUE_A_MOMENT' : 'RECONSUME_LATER';
        }
        const [order, step] = id.split(':').map(Number) as [number, number];
        done.set(order, [...(done.get(order) ?? []), step]);
        return 'CONSUME_SUCCESS';
      } finally {
        inFlight.set(key, (inFlight.get(key) ?? 1) - 1);
      }
    };
    const members = ['a', 'b'].map(() => {
      const member = new PushConsumer({
        group,
        nameServers: [cluster.namesrvAddress],
        orderly: true,
        consumeFromWhere: 'FIRST_OFFSET',
        rebalanceIntervalMs: 300,
        lockIntervalMs: 300,
        offsetPersistIntervalMs: 200,
        suspendTimeoutMs: 1000,
        pullRetryDelayMs: 200,
        suspendCurrentQueueTimeMs: 200,
        heartbeatIntervalMs: 1000,
      });
      member.subscribe(topic, '*', handler);
      return member;
    });
    const [a, b] = members as [PushConsumer, PushConsumer];
    try {
      for (const member of members) await member.start();
      const owned = (member: PushConsumer): string[] =>
        member
          .assignedQueues()
          .filter((q) => q.topic === topic)
          .map(queueKey);
      await eventually(() => owned(a).length === 2 && owned(b).length === 2, { timeoutMs: 8000 });
      assert.deepEqual(new Set([...owned(a), ...owned(b)]).size, QUEUES);

      const byOrder = (queues: readonly MessageQueue[], message: Message): MessageQueue =>
        queues[Number(message.keys?.[0]) % queues.length] as MessageQueue;
      for (let step = 0; step < STEPS; step++) {
        for (let order = 0; order < ORDERS; order++) {
          await producer.send(
            { topic, keys: [String(order)], body: Buffer.from(`${order}:${step}`) },
            { selector: byOrder },
          );
        }
      }
      await eventually(() => [...done.values()].reduce((sum, steps) => sum + steps.length, 0) >= ORDERS * STEPS, {
        timeoutMs: 12_000,
      });
      for (let order = 0; order < ORDERS; order++) {
        assert.deepEqual(
          done.get(order),
          Array.from({ length: STEPS }, (_, i) => i),
          `order ${order} in sequence`,
        );
      }
      assert.equal(maxInFlightPerQueue, 1, 'one handler call per queue at a time');
      // The failing message was retried in place: nothing behind it in its queue ran in between.
      const failingQueue = [...calls].find(([, list]) => list.some((call) => call.id === failing));
      assert.ok(failingQueue);
      const list = failingQueue[1];
      const firstFailure = list.findIndex((call) => call.id === failing);
      assert.deepEqual(
        list.slice(firstFailure, firstFailure + 4).map((call) => [call.id, call.failed]),
        [
          [failing, true],
          [failing, true],
          [failing, true],
          [failing, false],
        ],
      );

      // A member leaves: the other locks its queues and carries on in order.
      await a.shutdown();
      await eventually(() => owned(b).length === QUEUES, { timeoutMs: 8000 });
      for (let order = 0; order < ORDERS; order++) {
        await producer.send(
          { topic, keys: [String(order)], body: Buffer.from(`${order}:${STEPS}`) },
          { selector: byOrder },
        );
      }
      await eventually(() => [...done.values()].every((steps) => steps.length === STEPS + 1), { timeoutMs: 8000 });
      for (let order = 0; order < ORDERS; order++) {
        assert.deepEqual(
          done.get(order),
          Array.from({ length: STEPS + 1 }, (_, i) => i),
        );
      }
    } finally {
      for (const member of members) await member.shutdown();
      await producer.shutdown();
    }
  });
});
