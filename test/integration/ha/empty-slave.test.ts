/**
 * An empty slave joining a master whose oldest CommitLog segments retention already deleted: the
 * master streams from its first remaining offset, and the slave restarts its empty log there instead
 * of refusing every chunk.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ResponseCode } from '../../../src/engine/remoting/codes.js';
import { eventually } from '../../helpers/eventually.js';
import { createTopicRequest, pullRequest, sendV2Request } from '../broker/broker-harness.js';
import { type HaCluster, startCluster } from './ha-harness.js';

const TOPIC = 'EmptySlaveTopic';
const DAY_MS = 86_400_000;

describe('empty slave of a master whose log no longer starts at 0', () => {
  let cluster: HaCluster;

  before(async () => {
    cluster = await startCluster({}, false);
    const created = await cluster.call(cluster.master, createTopicRequest(TOPIC, 1));
    assert.equal(created.code, ResponseCode.Success);
  });

  after(async () => {
    await cluster.close();
  });

  it('restarts the empty log at the master first offset and replicates from there', async () => {
    for (let i = 0; i < 200; i++) {
      const body = Buffer.from(`message ${i} `.repeat(80));
      const response = await cluster.call(cluster.master, sendV2Request(TOPIC, body, { queueId: 0 }));
      assert.equal(response.code, ResponseCode.Success, response.remark);
    }
    const { deletedSegments } = await cluster.master.store.runRetention(Date.now() + 30 * DAY_MS);
    assert.ok(deletedSegments > 0, 'retention deleted the oldest segments');
    const masterMin = cluster.master.store.stats().commitLogMinOffset;
    assert.ok(masterMin > 0);

    const slave = await cluster.startSlave();
    await eventually(() => slave.store.stats().commitLogMaxOffset === cluster.master.store.stats().commitLogMaxOffset, {
      timeoutMs: 10_000,
    });
    assert.equal(slave.store.stats().commitLogMinOffset, masterMin);
    const last = cluster.master.store.getMaxOffsetInQueue(TOPIC, 0) - 1;
    const request = (): ReturnType<typeof pullRequest> => pullRequest(TOPIC, 0, { queueOffset: last, maxMsgNums: 1 });
    const fromMaster = await cluster.call(cluster.master, request());
    const fromSlave = await cluster.call(slave, request());
    assert.equal(fromSlave.code, ResponseCode.Success, fromSlave.remark);
    assert.ok(fromSlave.body !== undefined && fromMaster.body !== undefined && fromSlave.body.equals(fromMaster.body));

    const response = await cluster.call(cluster.master, sendV2Request(TOPIC, Buffer.from('after'), { queueId: 0 }));
    assert.equal(response.code, ResponseCode.Success);
    await eventually(() => slave.store.getMaxOffsetInQueue(TOPIC, 0) === last + 2, { timeoutMs: 10_000 });
  });
});
