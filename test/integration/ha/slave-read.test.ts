/**
 * Slave read (RocketMQ slaveReadEnable): a master sends a consumer that reads far behind the log's
 * end to its slave through the pull response's suggestWhichBrokerId, the slave sends it back once it
 * caught up, and our push consumer follows both suggestions without losing a message.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PushConsumer } from '../../../src/engine/client/index.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest } from '../../../src/engine/remoting/command.js';
import { eventually } from '../../helpers/eventually.js';
import { createTopicRequest, pullRequest, sendV2Request } from '../broker/broker-harness.js';
import { type HaCluster, startCluster } from './ha-harness.js';

const TOPIC = 'SlaveReadTopic';
const BEHIND_BYTES = 8 * 1024;
const MESSAGES = 60;

describe('slave read for consumers far behind', () => {
  let cluster: HaCluster;

  before(async () => {
    const slaveRead = { slaveReadEnable: true, slaveReadBehindBytes: BEHIND_BYTES };
    cluster = await startCluster(slaveRead, false);
    await cluster.startSlave(slaveRead);
    const created = await cluster.call(cluster.master, createTopicRequest(TOPIC, 1));
    assert.equal(created.code, ResponseCode.Success);
    for (let i = 0; i < MESSAGES; i++) {
      const body = Buffer.from(`message ${i} `.repeat(50));
      const sent = await cluster.call(cluster.master, sendV2Request(TOPIC, body, { queueId: 0 }));
      assert.equal(sent.code, ResponseCode.Success, sent.remark);
    }
    const slave = cluster.slave;
    assert.ok(slave !== undefined);
    await eventually(() => slave.store.stats().commitLogMaxOffset === cluster.master.store.stats().commitLogMaxOffset, {
      timeoutMs: 10_000,
    });
  });

  /** Messages the slave has served to pulls (GET_BROKER_RUNTIME_INFO msgGetTotalTodayNow). */
  async function slavePulledMessages(): Promise<number> {
    const slave = cluster.slave;
    assert.ok(slave !== undefined);
    const info = await cluster.call(slave, createRequest(RequestCode.GetBrokerRuntimeInfo, {}));
    const table = (JSON.parse(info.body?.toString('utf8') ?? '{}') as { table: Record<string, string> }).table;
    return Number(table['msgGetTotalTodayNow']);
  }

  after(async () => {
    await cluster.close();
  });

  it('suggests the slave to a reader far behind and the master to one near the end', async () => {
    const slave = cluster.slave;
    assert.ok(slave !== undefined);
    const far = await cluster.call(cluster.master, pullRequest(TOPIC, 0, { queueOffset: 0, maxMsgNums: 1 }));
    assert.equal(far.extFields['suggestWhichBrokerId'], '1', 'far behind: read from the slave');
    const near = await cluster.call(
      cluster.master,
      pullRequest(TOPIC, 0, { queueOffset: MESSAGES - 1, maxMsgNums: 1 }),
    );
    assert.equal(near.extFields['suggestWhichBrokerId'], '0');
    const caughtUp = await cluster.call(slave, pullRequest(TOPIC, 0, { queueOffset: MESSAGES - 1, maxMsgNums: 1 }));
    assert.equal(caughtUp.extFields['suggestWhichBrokerId'], '0', 'the slave sends a caught-up reader back');
  });

  it('lets a push consumer read the old messages from the slave and all of them exactly as sent', async () => {
    const slave = cluster.slave;
    assert.ok(slave !== undefined);
    const servedBefore = await slavePulledMessages();
    const received: string[] = [];
    const consumer = new PushConsumer({
      group: 'slave-read-group',
      nameServers: [cluster.nameServer.address],
      consumeFromWhere: 'FIRST_OFFSET',
      pullBatchSize: 4,
    });
    consumer.subscribe(TOPIC, '*', (messages) => {
      for (const message of messages) received.push(message.body.toString('utf8'));
      return 'CONSUME_SUCCESS';
    });
    await consumer.start();
    try {
      await eventually(() => new Set(received).size === MESSAGES, { timeoutMs: 15_000 });
    } finally {
      await consumer.shutdown();
    }
    for (let i = 0; i < MESSAGES; i++) assert.ok(received.includes(`message ${i} `.repeat(50)), `message ${i}`);
    assert.ok((await slavePulledMessages()) > servedBefore, 'some pulls were served by the slave');
  });
});
