/**
 * Reading from a slave once the master is gone: a master and an async slave of one broker name, a
 * Producer and PushConsumers of our client over TCP through the NameServer. After the master shuts
 * down, the route names only the slave (brokerId 1), and consumers read every message from it: one
 * started afterwards, and one that was reading from the master and follows the route change.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { testBrokerConfig } from '../../../src/engine/broker/broker-config.js';
import { Broker } from '../../../src/engine/broker/broker.js';
import { Producer } from '../../../src/engine/client/producer.js';
import { PushConsumer } from '../../../src/engine/client/push-consumer.js';
import { ResponseCode } from '../../../src/engine/remoting/codes.js';
import { eventually } from '../../helpers/eventually.js';
import { makeTempDir } from '../../helpers/temp-dir.js';
import { createTopicRequest } from '../broker/broker-harness.js';
import { type HaCluster, startCluster } from '../ha/ha-harness.js';

const TOPIC = 'SlaveReadTopic';
const QUEUES = 4;

describe('consumers read from the slave when the master is gone', () => {
  let cluster: HaCluster;
  const clients: { shutdown(): Promise<void> }[] = [];

  beforeEach(async () => {
    cluster = await startCluster();
    const created = await cluster.call(cluster.master, createTopicRequest(TOPIC, QUEUES));
    assert.equal(created.code, ResponseCode.Success, created.remark);
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.shutdown();
    await cluster.close();
  });

  /** Sends `count` messages through the NameServer route; returns their bodies. */
  async function produce(count: number, given?: Producer): Promise<Set<string>> {
    let producer = given;
    if (producer === undefined) {
      producer = new Producer({ group: 'SlaveReadProducer', nameServers: [cluster.nameServer.address] });
      await producer.start();
      clients.push(producer);
    }
    const sender: Producer = producer;
    // The topic's own route, not the TBW102 template: the master registered it.
    await eventually(async () => assert.equal((await sender.fetchPublishQueues(TOPIC)).length, QUEUES));
    const bodies = new Set<string>();
    for (let i = 0; i < count; i++) {
      const body = `failover message ${i}`;
      const result = await sender.send({ topic: TOPIC, body: Buffer.from(body) });
      assert.equal(result.status, 'SEND_OK');
      bodies.add(body);
    }
    return bodies;
  }

  /** Waits until the slave holds every message and every queue of the topic. */
  async function slaveCaughtUp(): Promise<void> {
    const { master, slave } = cluster;
    assert.ok(slave !== undefined, 'the slave runs');
    await eventually(
      () => {
        assert.equal(slave.store.stats().commitLogMaxOffset, master.store.stats().commitLogMaxOffset);
        for (let queueId = 0; queueId < QUEUES; queueId++) {
          assert.equal(
            slave.store.getMaxOffsetInQueue(TOPIC, queueId),
            master.store.getMaxOffsetInQueue(TOPIC, queueId),
          );
        }
      },
      { timeoutMs: 10_000 },
    );
  }

  /** Waits until the NameServer's route names only the slave. */
  async function routeHasOnlySlave(): Promise<void> {
    const slave = cluster.slave;
    assert.ok(slave !== undefined, 'the slave runs');
    await eventually(() => {
      const route = cluster.nameServer.routes.pickupTopicRouteData(TOPIC);
      assert.deepEqual(
        route?.brokerDatas.map((broker) => broker.brokerAddrs),
        [{ '1': slave.address }],
      );
    });
  }

  function consumer(
    group: string,
    received: string[],
    extra: Partial<ConstructorParameters<typeof PushConsumer>[0]> = {},
  ) {
    const created = new PushConsumer({
      group,
      nameServers: [cluster.nameServer.address],
      consumeFromWhere: 'FIRST_OFFSET',
      pullRetryDelayMs: 100,
      suspendTimeoutMs: 1000,
      ...extra,
    });
    created.subscribe(TOPIC, '*', (messages) => {
      for (const message of messages) received.push(message.body.toString());
      return 'CONSUME_SUCCESS';
    });
    clients.push(created);
    return created;
  }

  it('a consumer started after the master shut down reads every message from the slave', async () => {
    const sent = await produce(200);
    await slaveCaughtUp();
    await cluster.master.shutdown();
    await routeHasOnlySlave();

    const received: string[] = [];
    const readers = consumer('SlaveReadGroup', received);
    await readers.start();
    await eventually(() => assert.equal(new Set(received).size, sent.size), { timeoutMs: 15_000 });
    assert.deepEqual(new Set(received), sent);
    assert.equal(readers.assignedQueues().filter((queue) => queue.topic === TOPIC).length, QUEUES);
  });

  it('a consumer reading from the master follows the route to the slave when the master goes', async () => {
    const sent = await produce(120);
    await slaveCaughtUp();

    // One message in flight per queue, the handler held: most messages are still on the broker.
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const received: string[] = [];
    const reader = new PushConsumer({
      group: 'FollowGroup',
      nameServers: [cluster.nameServer.address],
      consumeFromWhere: 'FIRST_OFFSET',
      pullBatchSize: 1,
      maxCachedMessagesPerQueue: 1,
      pullRetryDelayMs: 100,
      suspendTimeoutMs: 1000,
      // The periodic route poll must not be what finds the slave.
      routeRefreshIntervalMs: 600_000,
      rebalanceIntervalMs: 600_000,
    });
    reader.subscribe(TOPIC, '*', async (messages): Promise<'CONSUME_SUCCESS'> => {
      await gate;
      for (const message of messages) received.push(message.body.toString());
      return 'CONSUME_SUCCESS';
    });
    clients.push(reader);
    await reader.start();
    assert.equal(reader.assignedQueues().filter((queue) => queue.topic === TOPIC).length, QUEUES);

    await cluster.master.shutdown();
    await routeHasOnlySlave();
    release();
    await eventually(() => assert.equal(new Set(received).size, sent.size), { timeoutMs: 15_000 });
    assert.deepEqual(new Set(received), sent);
  });

  it('a producer sends to a new master at a new address within a second or two, not at the next route poll', async () => {
    const producer = new Producer({
      group: 'NewMasterProducer',
      nameServers: [cluster.nameServer.address],
      sendTimeoutMs: 1000,
      routeRefreshIntervalMs: 600_000,
    });
    await producer.start();
    clients.push(producer);
    await produce(10, producer);
    const oldMaster = cluster.master.address;
    await cluster.master.shutdown();
    await routeHasOnlySlave();
    // The route the producer holds still names the old master: the next send fails there once.
    await assert.rejects(producer.send({ topic: TOPIC, body: Buffer.from('no master') }));
    assert.ok(producer.avoidedBrokerAddresses().includes(oldMaster), 'the old master is avoided');

    // A new master of the same broker name, at another address (what a promotion looks like to clients).
    const temp = await makeTempDir('rb-new-master-');
    const newMaster = new Broker(
      testBrokerConfig(temp.dir, { namesrvAddresses: [cluster.nameServer.address], haPort: 0 }),
    );
    clients.push({ shutdown: async () => (await newMaster.shutdown(), await temp.cleanup()) });
    await newMaster.start();
    const created = await cluster.call(newMaster, createTopicRequest(TOPIC, QUEUES));
    assert.equal(created.code, ResponseCode.Success, created.remark);
    const registeredMs = Date.now();
    await eventually(
      async () => {
        const result = await producer.send({ topic: TOPIC, body: Buffer.from('to the new master') });
        assert.equal(result.status, 'SEND_OK');
      },
      { timeoutMs: 5000, intervalMs: 100 },
    );
    const elapsedMs = Date.now() - registeredMs;
    assert.ok(elapsedMs < 4000, `the new master was used after ${elapsedMs} ms`);
    let stored = 0;
    for (let queueId = 0; queueId < QUEUES; queueId++) stored += newMaster.store.getMaxOffsetInQueue(TOPIC, queueId);
    assert.ok(stored >= 1, 'the new master stored it');
  });
});
