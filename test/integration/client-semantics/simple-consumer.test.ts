/**
 * SimpleConsumer (pop) against a real NameServer and broker: leases with receipt handles, ack, nack,
 * changeInvisibleTime, redelivery when a lease runs out, members of one group sharing messages, and
 * tag filtering. The basic flow runs over both transports.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Producer } from '../../../src/engine/client/producer.js';
import { parseReceiptHandle } from '../../../src/engine/client/pop-api.js';
import {
  type ReceivedMessage,
  SimpleConsumer,
  type SimpleConsumerOptions,
} from '../../../src/engine/client/simple-consumer.js';
import { TRANSPORT_KINDS, type TransportKind } from '../client/cluster.js';
import { eventually } from '../../helpers/eventually.js';
import { type SemanticsCluster, startSemanticsCluster } from './harness.js';

describe('simple consumer (pop)', () => {
  let cluster: SemanticsCluster;
  let producer: Producer;
  const consumers: SimpleConsumer[] = [];

  before(async () => {
    cluster = await startSemanticsCluster();
    producer = new Producer({ group: 'pop-pg', nameServers: [cluster.namesrvAddress] });
    await producer.start();
  });

  after(async () => {
    for (const consumer of consumers) await consumer.shutdown();
    await producer.shutdown();
    await cluster.close();
  });

  async function member(
    group: string,
    topic: string,
    kind: TransportKind = 'tcp',
    options: Partial<SimpleConsumerOptions> = {},
    expression = '*',
  ): Promise<SimpleConsumer> {
    const consumer = new SimpleConsumer({
      group,
      nameServers: [cluster.namesrvAddress],
      consumeFromWhere: 'FIRST_OFFSET',
      invisibleTimeMs: 10_000,
      awaitDurationMs: 500,
      heartbeatIntervalMs: 1000,
      ...options,
      ...cluster.clientTransport(kind),
    });
    consumer.subscribe(topic, expression);
    await consumer.start();
    consumers.push(consumer);
    return consumer;
  }

  async function send(topic: string, bodies: string[], tags?: string): Promise<void> {
    for (const body of bodies) {
      const message =
        tags === undefined ? { topic, body: Buffer.from(body) } : { topic, tags, body: Buffer.from(body) };
      await producer.send(message);
    }
  }

  /** Receives until `count` messages arrived (bounded by the eventually timeout). */
  async function receiveCount(
    consumer: SimpleConsumer,
    count: number,
    invisibleTimeMs?: number,
  ): Promise<ReceivedMessage[]> {
    const got: ReceivedMessage[] = [];
    await eventually(
      async () => {
        got.push(...(await consumer.receive(16, invisibleTimeMs)));
        return got.length >= count;
      },
      { timeoutMs: 8000, intervalMs: 10 },
    );
    return got;
  }

  for (const kind of TRANSPORT_KINDS) {
    it(`receives messages with receipt handles and never redelivers acked ones (${kind})`, async () => {
      const topic = `PopBasic_${kind.replace('-', '_')}`;
      await cluster.createTopic(topic, 2);
      await send(topic, ['m0', 'm1', 'm2']);
      const consumer = await member(`pop-basic-${kind}`, topic, kind, { invisibleTimeMs: 1000 });
      const got = await receiveCount(consumer, 3);
      assert.deepEqual(got.map((m) => m.body.toString()).sort(), ['m0', 'm1', 'm2']);
      for (const message of got) {
        assert.equal(message.topic, topic);
        const handle = parseReceiptHandle(message.receiptHandle);
        assert.equal(handle.brokerName, message.brokerName);
        assert.equal(handle.queueId, message.queueId);
        assert.equal(handle.queueOffset, message.queueOffset);
        assert.equal(handle.invisibleTimeMs, 1000);
        await consumer.ack(message);
      }
      // Well past the 1 s lease: an acked message stays gone.
      const deadline = Date.now() + 2500;
      while (Date.now() < deadline) assert.deepEqual(await consumer.receive(16), []);
    });
  }

  it('hides a leased message from other members until it is nacked, then another member gets it', async () => {
    const topic = 'PopShare';
    await cluster.createTopic(topic, 1);
    await send(topic, ['only']);
    const a = await member('pop-share', topic);
    const b = await member('pop-share', topic);
    const [leased] = await receiveCount(a, 1);
    assert.ok(leased);
    assert.deepEqual(await b.receive(16), []);
    await a.nack(leased);
    const [again] = await receiveCount(b, 1);
    assert.equal(again?.body.toString(), 'only');
    assert.equal(again?.msgId, leased.msgId);
    await b.ack(again as ReceivedMessage);
  });

  it('extends a lease with changeInvisibleTime, which returns a new receipt handle', async () => {
    const topic = 'PopExtend';
    await cluster.createTopic(topic, 1);
    await send(topic, ['slow']);
    const a = await member('pop-extend', topic);
    const b = await member('pop-extend', topic);
    const [leased] = await receiveCount(a, 1, 1000);
    assert.ok(leased);
    const oldHandle = leased.receiptHandle;
    const newHandle = await a.changeInvisibleTime(leased, 6000);
    assert.notEqual(newHandle, oldHandle);
    assert.equal(leased.receiptHandle, newHandle);
    assert.equal(parseReceiptHandle(newHandle).invisibleTimeMs, 6000);
    // The original 1 s lease has long passed; the extended one has not.
    const deadline = Date.now() + 2500;
    while (Date.now() < deadline) assert.deepEqual(await b.receive(16), []);
    await a.ack(leased);
  });

  it('redelivers a message whose lease ran out, with its reconsume count raised', async () => {
    const topic = 'PopExpire';
    await cluster.createTopic(topic, 1);
    await send(topic, ['forgotten']);
    const consumer = await member('pop-expire', topic);
    const [first] = await receiveCount(consumer, 1, 500);
    assert.ok(first);
    const [second] = await receiveCount(consumer, 1, 5000);
    assert.equal(second?.msgId, first.msgId);
    assert.equal(second?.topic, topic);
    assert.ok((second?.reconsumeTimes ?? 0) > first.reconsumeTimes, 'the reconsume count travels with the message');
    await consumer.ack(second as ReceivedMessage);
  });

  it('receives only the tags its expression names', async () => {
    const topic = 'PopTags';
    await cluster.createTopic(topic, 2);
    await send(topic, ['a1', 'a2'], 'a');
    await send(topic, ['b1'], 'b');
    await send(topic, ['c1'], 'c');
    const consumer = await member('pop-tags', topic, 'tcp', {}, 'a || c');
    const got = await receiveCount(consumer, 3);
    assert.deepEqual(got.map((m) => m.body.toString()).sort(), ['a1', 'a2', 'c1']);
    for (const message of got) await consumer.ack(message);
    assert.deepEqual(await consumer.receive(16), []);
  });
});
