/**
 * BATCH_ACK_MESSAGE (RocketMQ 5's batched pop ack) through SimpleConsumer.ackMany over TCP against a
 * real NameServer and broker: leases of several queues and of the pop retry topic end in one request,
 * stale handles are skipped, the body has RocketMQ's BatchAck form, malformed bodies get an error
 * answer, and batch-acked messages stay acked across a broker restart while unacked ones come back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Producer } from '../../../src/engine/client/producer.js';
import { batchAckBody } from '../../../src/engine/client/pop-api.js';
import { type ReceivedMessage, SimpleConsumer } from '../../../src/engine/client/simple-consumer.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest } from '../../../src/engine/remoting/command.js';
import { eventually } from '../../helpers/eventually.js';
import { type SemanticsCluster, startSemanticsCluster } from './harness.js';

describe('batch ack (BATCH_ACK_MESSAGE)', () => {
  let cluster: SemanticsCluster;
  let producer: Producer;
  const consumers: SimpleConsumer[] = [];

  before(async () => {
    cluster = await startSemanticsCluster();
    producer = new Producer({ group: 'batch-ack-pg', nameServers: [cluster.namesrvAddress] });
    await producer.start();
  });

  after(async () => {
    for (const consumer of consumers) await consumer.shutdown();
    await producer.shutdown();
    await cluster.close();
  });

  async function member(group: string, topic: string, invisibleTimeMs: number): Promise<SimpleConsumer> {
    const consumer = new SimpleConsumer({
      group,
      nameServers: [cluster.namesrvAddress],
      consumeFromWhere: 'FIRST_OFFSET',
      invisibleTimeMs,
      awaitDurationMs: 300,
    });
    consumer.subscribe(topic, '*');
    await consumer.start();
    consumers.push(consumer);
    return consumer;
  }

  async function send(topic: string, bodies: string[]): Promise<void> {
    for (const body of bodies) await producer.send({ topic, body: Buffer.from(body) });
  }

  async function receiveCount(consumer: SimpleConsumer, count: number, timeoutMs = 8000): Promise<ReceivedMessage[]> {
    const got: ReceivedMessage[] = [];
    await eventually(
      async () => {
        got.push(...(await consumer.receive(32)));
        return got.length >= count;
      },
      { timeoutMs, intervalMs: 10 },
    );
    return got;
  }

  it('ends the leases of many queues in one request and skips handles it no longer holds', async () => {
    await cluster.createTopic('BatchAckMany', 4);
    const bodies = Array.from({ length: 40 }, (_, i) => `many-${i}`);
    await send('BatchAckMany', bodies);
    const consumer = await member('gBatchMany', 'BatchAckMany', 10_000);
    const got = await receiveCount(consumer, 40);
    assert.deepEqual(got.map((m) => m.body.toString()).sort(), [...bodies].sort());
    assert.ok(new Set(got.map((m) => m.queueId)).size > 1, 'the batch spans several queues');
    // One handle is replaced first: the batch must skip the stale one and still end the rest.
    const moved = got[0] as ReceivedMessage;
    const staleHandle = moved.receiptHandle;
    await consumer.changeInvisibleTime(moved, 10_000);
    const stale = { ...moved, receiptHandle: staleHandle };
    assert.equal(await consumer.ackMany([stale, ...got.slice(1)]), 39);
    assert.equal(await consumer.ackMany(got.slice(1)), 0, 'acking again ends nothing');
    assert.equal(await consumer.ackMany([moved]), 1, 'the current handle still acks');
    assert.deepEqual(await consumer.receive(32), [], 'nothing is left or redelivered');
  });

  it('acks redelivered messages leased from the pop retry topic', async () => {
    await cluster.createTopic('BatchAckRetry', 2);
    await send('BatchAckRetry', ['retry-0', 'retry-1', 'retry-2']);
    const consumer = await member('gBatchRetry', 'BatchAckRetry', 300);
    const first = await receiveCount(consumer, 3);
    assert.equal(first.length, 3);
    // Leases of 300 ms run out: the broker re-stores them in the group's pop retry topic.
    const again = await receiveCount(consumer, 3, 10_000);
    assert.ok(again.every((m) => m.leaseTopic.startsWith('%RETRY%') && m.topic === 'BatchAckRetry'));
    assert.equal(await consumer.ackMany(again), 3);
    const startedAt = Date.now();
    const late: ReceivedMessage[] = [];
    for (let polls = 0; polls < 20 && Date.now() - startedAt < 1200; polls++)
      late.push(...(await consumer.receive(32)));
    assert.deepEqual(late, [], 'batch-acked retry leases do not come back');
  });

  it('encodes BatchAck entries as RocketMQ does: offsets as a base64 bitset from the check-point start', () => {
    const handle = (queueId: number, queueOffset: number): string =>
      `10 1700000000000 30000 0 0 broker-a ${queueId} ${queueOffset}`;
    const body = JSON.parse(
      batchAckBody('broker-a', 'g', [
        { topic: 'T', receiptHandle: handle(1, 10) },
        { topic: 'T', receiptHandle: handle(1, 12) },
        { topic: 'T', receiptHandle: handle(1, 19) },
        { topic: 'T', receiptHandle: handle(2, 10) },
      ]).toString('utf8'),
    ) as { brokerName: string; acks: Record<string, unknown>[] };
    assert.equal(body.brokerName, 'broker-a');
    assert.equal(body.acks.length, 2, 'one BatchAck per queue, check-point start and pop time');
    assert.deepEqual(body.acks[0], {
      c: 'g',
      t: 'T',
      r: '0',
      so: 10,
      q: 1,
      rq: 0,
      pt: 1700000000000,
      it: 30000,
      // bits 0, 2 and 9 (java.util.BitSet.toByteArray: little endian)
      b: Buffer.from([0b101, 0b10]).toString('base64'),
    });
  });

  it('answers a malformed batch ack body with an error and keeps serving', async () => {
    for (const body of [
      'not json',
      '{"acks": 5}',
      '{"acks": [{"c": "g", "t": "T", "so": 0, "q": 0, "pt": 1, "b": 7}]}',
    ]) {
      const request = createRequest(RequestCode.BatchAckMessage, {});
      request.body = Buffer.from(body);
      const response = await cluster.call(request);
      assert.equal(response.code, ResponseCode.SystemError, body);
    }
    const empty = createRequest(RequestCode.BatchAckMessage, {});
    empty.body = Buffer.from('{"brokerName": "broker-a", "acks": []}');
    assert.equal((await cluster.call(empty)).code, ResponseCode.Success);
  });

  it('keeps batch-acked messages acked and redelivers the unacked ones after a broker restart', async () => {
    await cluster.createTopic('BatchAckRestart', 2);
    const bodies = Array.from({ length: 10 }, (_, i) => `restart-${i}`);
    await send('BatchAckRestart', bodies);
    const consumer = await member('gBatchRestart', 'BatchAckRestart', 1500);
    const got = await receiveCount(consumer, 10, 5000);
    const unacked = new Set(['restart-1', 'restart-4', 'restart-8']);
    const toAck = got.filter((m) => !unacked.has(m.body.toString()));
    assert.equal(await consumer.ackMany(toAck), 7);
    await cluster.restartBroker();
    const after: string[] = [];
    // Receive errors right after the restart (the old connection is gone) are retried by eventually.
    await eventually(
      async () => {
        const messages = await consumer.receive(32);
        after.push(...messages.map((m) => m.body.toString()));
        if (messages.length > 0) await consumer.ackMany(messages);
        return after.length >= 3;
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    after.push(...(await consumer.receive(32)).map((m) => m.body.toString()));
    assert.deepEqual(after.sort(), [...unacked].sort());
  });
});
