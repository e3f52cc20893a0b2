import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PullSysFlag } from '../../../src/engine/broker/pull-message-processor.js';
import { decodeRecords } from '../../../src/engine/common/message-record.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest, type RemotingCommand } from '../../../src/engine/remoting/command.js';
import { eventually } from '../../helpers/eventually.js';
import {
  type BrokerHarness,
  createTopicRequest,
  pullRequest,
  remarkOf,
  sendV2Request,
  startHarness,
} from './broker-harness.js';

function queryOffset(group: string, topic: string, queueId: number): RemotingCommand {
  return createRequest(RequestCode.QueryConsumerOffset, { consumerGroup: group, topic, queueId: String(queueId) });
}

function updateOffset(group: string, topic: string, queueId: number, commitOffset: number): RemotingCommand {
  return createRequest(RequestCode.UpdateConsumerOffset, {
    consumerGroup: group,
    topic,
    queueId: String(queueId),
    commitOffset: String(commitOffset),
  });
}

describe('broker offsets and topics across restarts', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h?.close();
  });

  it('answers offset 0 for a group that never committed on a queue that starts at 0', async () => {
    await h.call(sendV2Request('FreshOffsets', Buffer.from('x'), { queueId: 0 }));
    const response = await h.call(queryOffset('new-group', 'FreshOffsets', 0));
    assert.equal(response.code, ResponseCode.Success, remarkOf(response));
    assert.equal(response.extFields['offset'], '0');
  });

  it('keeps committed offsets across a broker restart', async () => {
    assert.equal((await h.call(updateOffset('g1', 'Persisted', 0, 7))).code, ResponseCode.Success);
    assert.equal((await h.call(updateOffset('g1', 'Persisted', 3, 11))).code, ResponseCode.Success);
    assert.equal((await h.call(queryOffset('g1', 'Persisted', 3))).extFields['offset'], '11');
    await h.restart();
    assert.equal((await h.call(queryOffset('g1', 'Persisted', 0))).extFields['offset'], '7');
    assert.equal((await h.call(queryOffset('g1', 'Persisted', 3))).extFields['offset'], '11');
    const file = JSON.parse(readFileSync(join(h.dir, 'config', 'consumerOffset.json'), 'utf8')) as {
      offsetTable: Record<string, Record<string, number>>;
    };
    assert.deepEqual(file.offsetTable['Persisted@g1'], { '0': 7, '3': 11 });
  });

  it('persists offsets on its timer, not only at shutdown', async () => {
    await h.call(updateOffset('g2', 'Timed', 1, 5));
    await eventually(() => {
      const file = JSON.parse(readFileSync(join(h.dir, 'config', 'consumerOffset.json'), 'utf8')) as {
        offsetTable: Record<string, Record<string, number>>;
      };
      assert.deepEqual(file.offsetTable['Timed@g2'], { '1': 5 });
    });
  });

  it('commits the offset a pull carries', async () => {
    await h.call(sendV2Request('PullCommit', Buffer.from('x'), { queueId: 0 }));
    const pulled = await h.call(
      pullRequest('PullCommit', 0, {
        group: 'g3',
        sysFlag: PullSysFlag.CommitOffset | PullSysFlag.Subscription,
        commitOffset: 1,
      }),
    );
    assert.equal(pulled.code, ResponseCode.Success, remarkOf(pulled));
    assert.equal((await h.call(queryOffset('g3', 'PullCommit', 0))).extFields['offset'], '1');
  });

  it('keeps created topics and stored messages across a broker restart', async () => {
    assert.equal((await h.call(createTopicRequest('Durable', 5))).code, ResponseCode.Success);
    await h.call(sendV2Request('Durable', Buffer.from('survives'), { queueId: 4 }));
    await h.restart();
    const topics = await h.call(createRequest(RequestCode.GetAllTopicConfig));
    const wrapper = JSON.parse(topics.body?.toString() ?? '{}') as {
      topicConfigTable: Record<string, { readQueueNums: number; writeQueueNums: number }>;
    };
    assert.equal(wrapper.topicConfigTable['Durable']?.writeQueueNums, 5);
    const pulled = await h.call(pullRequest('Durable', 4));
    assert.equal(pulled.code, ResponseCode.Success, remarkOf(pulled));
    assert.equal(decodeRecords(pulled.body ?? Buffer.alloc(0))[0]?.body.toString(), 'survives');
  });

  it('registers its routes again after a restart on a new port', async () => {
    await h.call(createTopicRequest('Rerouted', 1));
    await h.restart();
    await eventually(async () => {
      const route = await h.client.invoke(
        h.nameServer.address,
        createRequest(RequestCode.GetRouteInfoByTopic, { topic: 'Rerouted' }),
        5000,
      );
      assert.equal(route.code, ResponseCode.Success, remarkOf(route));
      assert.ok(route.body?.toString().includes(h.broker.address));
    });
  });
});
