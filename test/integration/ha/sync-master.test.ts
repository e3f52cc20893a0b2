/**
 * SYNC_MASTER: a send is answered once a slave has its bytes; without a slave it is answered
 * SLAVE_NOT_AVAILABLE, and with a slave that does not confirm, FLUSH_SLAVE_TIMEOUT (RocketMQ handleHA).
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeReport } from '../../../src/engine/broker/ha/ha-codec.js';
import { ResponseCode } from '../../../src/engine/remoting/codes.js';
import { eventually } from '../../helpers/eventually.js';
import { createTopicRequest, sendV2Request } from '../broker/broker-harness.js';
import { type HaCluster, startCluster } from './ha-harness.js';

const TOPIC = 'SyncTopic';
const SYNC_SLAVE_TIMEOUT_MS = 300;

describe('sync master', () => {
  let cluster: HaCluster;

  before(async () => {
    cluster = await startCluster({ brokerRole: 'SYNC_MASTER', syncSlaveTimeoutMs: SYNC_SLAVE_TIMEOUT_MS });
    assert.equal((await cluster.call(cluster.master, createTopicRequest(TOPIC, 1))).code, ResponseCode.Success);
  });

  after(async () => {
    await cluster.close();
  });

  const send = (i: number): ReturnType<HaCluster['call']> =>
    cluster.call(cluster.master, sendV2Request(TOPIC, Buffer.from(`sync ${i}`), { queueId: 0 }));

  it('answers a send only once the slave has stored the record', async () => {
    await eventually(() => (cluster.master.ha.master?.slaveCount ?? 0) === 1);
    for (let i = 0; i < 20; i++) {
      const response = await send(i);
      assert.equal(response.code, ResponseCode.Success, response.remark);
      const slave = cluster.slave;
      assert.ok(slave !== undefined);
      // No waiting: the answer itself means the slave has the bytes.
      assert.equal(slave.store.stats().commitLogMaxOffset, cluster.master.store.stats().commitLogMaxOffset);
    }
  });

  it('answers SLAVE_NOT_AVAILABLE, with the send result, when no slave is connected', async () => {
    await cluster.stopSlave();
    await eventually(() => (cluster.master.ha.master?.slaveCount ?? -1) === 0);
    const response = await send(100);
    assert.equal(response.code, ResponseCode.SlaveNotAvailable);
    assert.ok((response.extFields['msgId'] ?? '').length > 0, 'the message is stored and its id returned');
  });

  it('answers FLUSH_SLAVE_TIMEOUT when the connected slave does not confirm in time', async () => {
    const haPort = cluster.master.ha.master?.port ?? 0;
    const fakeSlave: Socket = connect({ host: '127.0.0.1', port: haPort });
    try {
      await new Promise<void>((resolve, reject) => fakeSlave.once('connect', resolve).once('error', reject));
      // Reports once, at the master's current end, then stays silent.
      fakeSlave.write(encodeReport(cluster.master.store.stats().commitLogMaxOffset));
      fakeSlave.on('data', () => {});
      await eventually(() => (cluster.master.ha.master?.slaveCount ?? 0) === 1);
      const startedMs = Date.now();
      const response = await send(200);
      assert.equal(response.code, ResponseCode.FlushSlaveTimeout);
      assert.ok(Date.now() - startedMs >= SYNC_SLAVE_TIMEOUT_MS - 20);
    } finally {
      fakeSlave.destroy();
    }
  });
});
