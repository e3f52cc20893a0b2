/**
 * Async replication between a master and a slave broker over the HA port: the slave's CommitLog, queues,
 * topics and consumer offsets follow the master's; the slave refuses sends and resumes after a restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ResponseCode } from '../../../src/engine/remoting/codes.js';
import { eventually } from '../../helpers/eventually.js';
import { createTopicRequest, pullRequest, sendV2Request } from '../broker/broker-harness.js';
import { type HaCluster, queryOffsetRequest, startCluster, updateOffsetRequest } from './ha-harness.js';

const TOPIC = 'HaTopic';

describe('async replication', () => {
  let cluster: HaCluster;

  before(async () => {
    cluster = await startCluster();
    const created = await cluster.call(cluster.master, createTopicRequest(TOPIC, 2));
    assert.equal(created.code, ResponseCode.Success);
  });

  after(async () => {
    await cluster.close();
  });

  async function sendToMaster(count: number, from: number): Promise<void> {
    for (let i = from; i < from + count; i++) {
      const body = Buffer.from(`message ${i} `.repeat(20 + (i % 50)));
      const response = await cluster.call(
        cluster.master,
        sendV2Request(TOPIC, body, { queueId: i % 2, tags: `t${i}` }),
      );
      assert.equal(response.code, ResponseCode.Success, response.remark);
    }
  }

  async function caughtUp(): Promise<void> {
    const slave = cluster.slave;
    assert.ok(slave !== undefined);
    await eventually(
      () => {
        assert.equal(slave.store.stats().commitLogMaxOffset, cluster.master.store.stats().commitLogMaxOffset);
      },
      { timeoutMs: 10_000 },
    );
  }

  it('makes messages sent to the master pullable on the slave, byte-identical', async () => {
    await sendToMaster(120, 0);
    assert.ok(cluster.master.store.stats().commitLogMaxOffset > 64 * 1024, 'the log spans several segments');
    await caughtUp();
    const slave = cluster.slave;
    assert.ok(slave !== undefined);
    for (const queueId of [0, 1]) {
      let queueOffset = 0;
      for (let round = 0; round < 20 && queueOffset < 60; round++) {
        const request = (): ReturnType<typeof pullRequest> =>
          pullRequest(TOPIC, queueId, { queueOffset, maxMsgNums: 16 });
        const fromMaster = await cluster.call(cluster.master, request());
        const fromSlave = await eventually(async () => {
          const response = await cluster.call(slave, request());
          assert.equal(response.code, ResponseCode.Success, response.remark);
          return response;
        });
        assert.ok(fromSlave.body !== undefined && fromMaster.body !== undefined);
        assert.ok(fromSlave.body.equals(fromMaster.body), `queue ${queueId} at ${queueOffset} differs`);
        assert.equal(fromSlave.extFields['nextBeginOffset'], fromMaster.extFields['nextBeginOffset']);
        queueOffset = Number(fromSlave.extFields['nextBeginOffset']);
      }
      assert.equal(queueOffset, 60);
    }
  });

  it('wakes a pull held on the slave when a replicated message arrives', async () => {
    await caughtUp();
    const slave = cluster.slave;
    assert.ok(slave !== undefined);
    const queueOffset = slave.store.getMaxOffsetInQueue(TOPIC, 0);
    const startedMs = Date.now();
    const held = cluster.call(
      slave,
      pullRequest(TOPIC, 0, { queueOffset, sysFlag: 4 | 2, suspendTimeoutMillis: 4000, maxMsgNums: 1 }),
    );
    await eventually(() => slave.heldPullCount === 1);
    const sent = await cluster.call(
      cluster.master,
      sendV2Request(TOPIC, Buffer.from('wake up'), { queueId: 0, tags: 'wake' }),
    );
    assert.equal(sent.code, ResponseCode.Success);
    const response = await held;
    assert.equal(response.code, ResponseCode.Success, response.remark);
    assert.equal(response.extFields['nextBeginOffset'], String(queueOffset + 1));
    assert.ok(Date.now() - startedMs < 3000, 'answered on arrival, not at the suspend timeout');
  });

  it('refuses sends on the slave with SERVICE_NOT_AVAILABLE', async () => {
    const slave = cluster.slave;
    assert.ok(slave !== undefined);
    const response = await cluster.call(slave, sendV2Request(TOPIC, Buffer.from('nope'), { queueId: 0 }));
    assert.equal(response.code, ResponseCode.ServiceNotAvailable);
  });

  it('copies consumer offsets committed on the master to the slave', async () => {
    const slave = cluster.slave;
    assert.ok(slave !== undefined);
    const updated = await cluster.call(cluster.master, updateOffsetRequest('ha-group', TOPIC, 1, 42));
    assert.equal(updated.code, ResponseCode.Success);
    await eventually(async () => {
      const response = await cluster.call(slave, queryOffsetRequest('ha-group', TOPIC, 1));
      assert.equal(response.code, ResponseCode.Success);
      assert.equal(response.extFields['offset'], '42');
    });
  });

  it('resumes a restarted slave from its own max offset instead of copying the log again', async () => {
    await caughtUp();
    await cluster.stopSlave();
    const slaveOffsetBefore = cluster.master.store.stats().commitLogMaxOffset;
    await sendToMaster(30, 1000);
    const transferredBefore = cluster.master.ha.master?.transferredBytes ?? 0;
    const slave = await cluster.startSlave();
    assert.equal(slave.store.stats().commitLogMaxOffset, slaveOffsetBefore);
    await caughtUp();
    const transferred = (cluster.master.ha.master?.transferredBytes ?? 0) - transferredBefore;
    assert.equal(transferred, cluster.master.store.stats().commitLogMaxOffset - slaveOffsetBefore);
    const response = await eventually(async () => {
      const pulled = await cluster.call(slave, pullRequest(TOPIC, 0, { queueOffset: 61, maxMsgNums: 32 }));
      assert.equal(pulled.code, ResponseCode.Success, pulled.remark);
      return pulled;
    });
    assert.equal(response.extFields['nextBeginOffset'], '76');
  });
});
