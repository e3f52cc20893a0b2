/**
 * Our client against a real NameServer and broker, once over TCP and once over the in-process
 * transport: send (single, async, oneway, batch), pull, offsets, tag filtering, long-polling latency.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Producer } from '../../../src/engine/client/producer.js';
import { PullConsumer } from '../../../src/engine/client/pull-consumer.js';
import { PushConsumer } from '../../../src/engine/client/push-consumer.js';
import type { MessageExt } from '../../../src/engine/client/message-ext.js';
import type { MessageQueue } from '../../../src/engine/client/route.js';
import { eventually } from '../../helpers/eventually.js';
import { startCluster, type TestCluster, TRANSPORT_KINDS } from './cluster.js';

/** Pulls every message of every queue of `topic` from offset 0. */
async function pullAll(consumer: PullConsumer, topic: string, tagExpression = '*'): Promise<MessageExt[]> {
  const messages: MessageExt[] = [];
  for (const queue of await consumer.fetchQueues(topic)) {
    let queueOffset = 0;
    for (let round = 0; round < 100; round++) {
      const result = await consumer.pull(queue, tagExpression, queueOffset, 32);
      messages.push(...result.messages);
      if (result.status === 'NO_NEW_MSG' || result.status === 'OFFSET_ILLEGAL') break;
      queueOffset = result.nextBeginOffset;
    }
  }
  return messages;
}

for (const kind of TRANSPORT_KINDS) {
  describe(`client over ${kind} transport`, () => {
    let cluster: TestCluster;
    let producer: Producer;
    let puller: PullConsumer;

    before(async () => {
      cluster = await startCluster();
      producer = new Producer({
        group: `pg-${kind}`,
        nameServers: [cluster.namesrvAddress],
        ...cluster.clientTransport(kind),
      });
      await producer.start();
      puller = new PullConsumer({
        group: `pull-${kind}`,
        nameServers: [cluster.namesrvAddress],
        ...cluster.clientTransport(kind),
      });
      await puller.start();
    });

    after(async () => {
      await producer.shutdown();
      await puller.shutdown();
      await cluster.close();
    });

    it('sends to a new topic and pulls every message back with tags, keys and properties intact', async () => {
      const topic = `SendPull_${kind.replace('-', '_')}`;
      const sent = new Map<string, number>();
      for (let i = 0; i < 20; i++) {
        const result = await producer.send({
          topic,
          body: Buffer.from(`body-${i}`),
          tags: i % 2 === 0 ? 'even' : 'odd',
          keys: [`k${i}`, 'common'],
          properties: { index: String(i) },
        });
        assert.equal(result.status, 'SEND_OK');
        assert.match(result.msgId, /^[0-9A-F]{32}$/);
        assert.match(result.offsetMsgId, /^[0-9A-F]{32}$/);
        assert.equal(result.messageQueue.topic, topic);
        assert.ok(result.queueOffset >= 0);
        sent.set(result.msgId, i);
      }
      const messages = await eventually(async () => {
        const all = await pullAll(puller, topic);
        assert.equal(all.length, 20);
        return all;
      });
      for (const message of messages) {
        const i = sent.get(message.msgId);
        assert.ok(i !== undefined, `unknown msgId ${message.msgId}`);
        assert.equal(message.body.toString(), `body-${i}`);
        assert.equal(message.tags, i % 2 === 0 ? 'even' : 'odd');
        assert.deepEqual(message.keys, [`k${i}`, 'common']);
        assert.deepEqual(message.properties, { index: String(i) });
        assert.equal(message.allProperties['UNIQ_KEY'], message.msgId);
        assert.equal(message.topic, topic);
      }
      const odd = await pullAll(puller, topic, 'odd');
      assert.equal(odd.length, 10);
      assert.ok(odd.every((message) => message.tags === 'odd'));
    });

    it('stores a group offset in the broker and reads it back', async () => {
      const topic = `Offsets_${kind.replace('-', '_')}`;
      const result = await producer.send({ topic, body: Buffer.from('x') });
      const queues = await eventually(() => puller.fetchQueues(topic));
      const queue = queues.find((q) => q.queueId === result.messageQueue.queueId) as MessageQueue;
      await puller.updateOffset(queue, 1);
      assert.equal(await puller.fetchOffset(queue), 1);
      assert.equal(await puller.maxOffset(queue), 1);
      assert.equal(await puller.minOffset(queue), 0);
    });

    it('sends a batch into one queue in order', async () => {
      const topic = `Batch_${kind.replace('-', '_')}`;
      const messages = Array.from({ length: 10 }, (_, i) => ({ topic, body: Buffer.from(`b${i}`), tags: 'batch' }));
      const result = await producer.sendBatch(messages);
      assert.equal(result.status, 'SEND_OK');
      assert.equal(result.msgId.split(',').length, 10);
      const pulled = await eventually(async () => {
        const all = await pullAll(puller, topic);
        assert.equal(all.length, 10);
        return all;
      });
      assert.ok(pulled.every((message) => message.queueId === result.messageQueue.queueId));
      assert.deepEqual(
        pulled.sort((a, b) => a.queueOffset - b.queueOffset).map((message) => message.body.toString()),
        messages.map((message) => message.body.toString()),
      );
      assert.deepEqual(
        pulled.map((message) => message.msgId),
        result.msgId.split(','),
      );
    });

    it('keeps many async sends in flight and sends oneway', async () => {
      const topic = `Async_${kind.replace('-', '_')}`;
      await producer.send({ topic, body: Buffer.from('first') });
      let callbacks = 0;
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          producer.sendAsync({ topic, body: Buffer.from(`a${i}`) }, {}, (err) => {
            if (err === undefined) callbacks++;
          }),
        ),
      );
      assert.equal(new Set(results.map((result) => result.msgId)).size, 200);
      await eventually(() => callbacks === 200);
      await producer.sendOneway({ topic, body: Buffer.from('oneway') });
      await eventually(async () => (await pullAll(puller, topic)).length === 202);
    });

    it('sends to the queue a selector picks', async () => {
      const topic = `Selector_${kind.replace('-', '_')}`;
      await producer.send({ topic, body: Buffer.from('create') });
      const queues = await eventually(() => producer.fetchPublishQueues(topic));
      const target = queues[queues.length - 1] as MessageQueue;
      for (let i = 0; i < 5; i++) {
        const result = await producer.send(
          { topic, body: Buffer.from(`s${i}`) },
          { selector: (candidates) => candidates[candidates.length - 1] as MessageQueue },
        );
        assert.equal(result.messageQueue.queueId, target.queueId);
      }
    });

    it('wakes a push consumer within a second of a send (long polling)', async (t) => {
      const topic = `Latency_${kind.replace('-', '_')}`;
      await producer.send({ topic, body: Buffer.from('create') });
      const arrivals = new Map<string, number>();
      const consumer = new PushConsumer({
        group: `latency-${kind}`,
        nameServers: [cluster.namesrvAddress],
        consumeFromWhere: 'FIRST_OFFSET',
        rebalanceIntervalMs: 300,
        suspendTimeoutMs: 5000,
        ...cluster.clientTransport(kind),
      });
      consumer.subscribe(topic, '*', (messages) => {
        for (const message of messages) arrivals.set(message.body.toString(), Date.now());
        return 'CONSUME_SUCCESS';
      });
      await consumer.start();
      try {
        await eventually(
          () => arrivals.has('create') && consumer.assignedQueues().filter((q) => q.topic === topic).length === 4,
          { timeoutMs: 8000 },
        );
        // Let every queue's pull reach the broker and be held there.
        await eventually(() => cluster.broker.heldPullCount >= 4, { timeoutMs: 5000 });
        const latencies: number[] = [];
        for (let i = 0; i < 5; i++) {
          const sentAt = Date.now();
          await producer.send({ topic, body: Buffer.from(`wake-${i}`) });
          await eventually(() => arrivals.has(`wake-${i}`), { timeoutMs: 3000, intervalMs: 2 });
          latencies.push((arrivals.get(`wake-${i}`) as number) - sentAt);
          await eventually(() => cluster.broker.heldPullCount >= 4, { timeoutMs: 5000 });
        }
        t.diagnostic(`long-polling wake-up latency over ${kind} (ms): ${latencies.join(', ')}`);
        assert.ok(Math.max(...latencies) < 1000, `latencies ${latencies.join(', ')}`);
      } finally {
        await consumer.shutdown();
      }
    });
  });
}
