import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeRecords } from '../../../src/engine/common/message-record.js';
import { ProcessorRegistry } from '../../../src/engine/remoting/channel.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { type RemotingCommand, createRequest } from '../../../src/engine/remoting/command.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';
import { eventually } from '../../helpers/eventually.js';
import {
  type BrokerHarness,
  createTopicRequest,
  heartbeatRequest,
  pullRequest,
  remarkOf,
  sendV2Request,
  startHarness,
} from '../broker/broker-harness.js';
import { fastjsonQueueTable, lockRequest, lockedQueueIds, unlockRequest } from './semantics-requests.js';

const LOCK_LIVE_MS = 1000;

function updateOffset(group: string, topic: string, queueId: number, commitOffset: number): RemotingCommand {
  return createRequest(RequestCode.UpdateConsumerOffset, {
    consumerGroup: group,
    topic,
    queueId: String(queueId),
    commitOffset: String(commitOffset),
  });
}

function queryOffset(group: string, topic: string, queueId: number): RemotingCommand {
  return createRequest(RequestCode.QueryConsumerOffset, { consumerGroup: group, topic, queueId: String(queueId) });
}

function resetRequest(group: string, topic: string, timestamp: number): RemotingCommand {
  return createRequest(RequestCode.InvokeBrokerToResetOffset, {
    topic,
    group,
    timestamp: String(timestamp),
    isForce: 'true',
  });
}

describe('ordered-queue locks, consume stats, offset reset and subscription checks', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await startHarness({ rebalanceLockMaxLiveTimeMs: LOCK_LIVE_MS });
    for (const [topic, queues] of [
      ['CtlStats', 2],
      ['CtlReset', 1],
    ] as const) {
      const created = await h.call(createTopicRequest(topic, queues));
      assert.equal(created.code, ResponseCode.Success, remarkOf(created));
    }
  });
  after(async () => {
    await h?.close();
  });

  it('locks a queue for one client of a group at a time; the holder re-locks, unlock and expiry free it', async () => {
    const a = await h.call(lockRequest('gLock', 'client-a', 'CtlLock', [0, 1]));
    assert.equal(a.code, ResponseCode.Success, remarkOf(a));
    assert.deepEqual(lockedQueueIds(a), [0, 1]);
    const b = await h.call(lockRequest('gLock', 'client-b', 'CtlLock', [1, 2]));
    assert.deepEqual(lockedQueueIds(b), [2], 'queue 1 is held by client-a');
    const otherGroup = await h.call(lockRequest('gLockOther', 'client-b', 'CtlLock', [0, 1]));
    assert.deepEqual(lockedQueueIds(otherGroup), [0, 1], 'locks are per group');
    assert.deepEqual(lockedQueueIds(await h.call(lockRequest('gLock', 'client-a', 'CtlLock', [0, 1]))), [0, 1]);

    const unlocked = await h.call(unlockRequest('gLock', 'client-a', 'CtlLock', [0]));
    assert.equal(unlocked.code, ResponseCode.Success, remarkOf(unlocked));
    assert.deepEqual(lockedQueueIds(await h.call(lockRequest('gLock', 'client-b', 'CtlLock', [0, 1]))), [0]);
    const notHolder = await h.call(unlockRequest('gLock', 'client-b', 'CtlLock', [1]));
    assert.equal(notHolder.code, ResponseCode.Success);
    // client-a stops renewing queue 1: once its lock has lived LOCK_LIVE_MS, client-b gets it.
    await eventually(
      async () => assert.deepEqual(lockedQueueIds(await h.call(lockRequest('gLock', 'client-b', 'CtlLock', [1]))), [1]),
      { timeoutMs: 4000, intervalMs: 50 },
    );
    assert.deepEqual(lockedQueueIds(await h.call(lockRequest('gLock', 'client-a', 'CtlLock', [1]))), []);
  });

  it('answers a malformed lock body with SYSTEM_ERROR', async () => {
    const response = await h.call(createRequest(RequestCode.LockBatchMq, {}, Buffer.from('{"mqSet":7}')));
    assert.equal(response.code, ResponseCode.SystemError);
  });

  it('reports broker and consumer offsets per queue in GET_CONSUME_STATS', async () => {
    for (let i = 0; i < 5; i++) await h.call(sendV2Request('CtlStats', Buffer.from(`s-${i}`), { queueId: i % 2 }));
    assert.equal((await h.call(updateOffset('gStats', 'CtlStats', 0, 2))).code, ResponseCode.Success);
    const stats = await h.call(
      createRequest(RequestCode.GetConsumeStats, { consumerGroup: 'gStats', topic: 'CtlStats' }),
    );
    assert.equal(stats.code, ResponseCode.Success, remarkOf(stats));
    const text = stats.body?.toString() ?? '';
    assert.match(text, /"consumeTps":0\.0/);
    const table = fastjsonQueueTable(text, 'offsetTable');
    const queue0 = table.get('CtlStats:0') as { brokerOffset: number; consumerOffset: number; lastTimestamp: number };
    const queue1 = table.get('CtlStats:1') as { brokerOffset: number; consumerOffset: number };
    assert.equal(queue0.brokerOffset, 3);
    assert.equal(queue0.consumerOffset, 2);
    assert.ok(queue0.lastTimestamp > 0);
    assert.equal(queue1.brokerOffset, 2);
    assert.equal(queue1.consumerOffset, 0);
    const byGroup = await h.call(createRequest(RequestCode.GetConsumeStats, { consumerGroup: 'gStats' }));
    assert.ok(fastjsonQueueTable(byGroup.body?.toString() ?? '', 'offsetTable').has('CtlStats:0'));
  });

  it('resets a group to a timestamp, stores the offsets and tells the online members', async () => {
    const resets: RemotingCommand[] = [];
    const registry = new ProcessorRegistry();
    registry.register(RequestCode.ResetConsumerClientOffset, (request) => {
      resets.push(request);
      return undefined;
    });
    registry.register(RequestCode.NotifyConsumerIdsChanged, () => undefined);
    const member = new RemotingClient({ registry });
    try {
      for (let i = 0; i < 6; i++) await h.call(sendV2Request('CtlReset', Buffer.from(`r-${i}`), { queueId: 0 }));
      const pulled = decodeRecords((await h.call(pullRequest('CtlReset', 0))).body ?? Buffer.alloc(0));
      const timestamp = pulled[3]?.storeTimestamp ?? 0;
      const expected = pulled.findIndex((m) => m.storeTimestamp >= timestamp);
      assert.equal((await h.call(updateOffset('gReset', 'CtlReset', 0, 6))).code, ResponseCode.Success);

      const offline = await h.call(resetRequest('gReset', 'CtlReset', 0));
      assert.equal(offline.code, ResponseCode.ConsumerNotOnline, 'nobody online to tell; offsets still stored');
      assert.equal((await h.call(queryOffset('gReset', 'CtlReset', 0))).extFields['offset'], '0');

      const beat = await member.invoke(h.broker.address, heartbeatRequest('client-r', 'gReset', 'CtlReset'), 5000);
      assert.equal(beat.code, ResponseCode.Success, remarkOf(beat));
      const reset = await h.call(resetRequest('gReset', 'CtlReset', timestamp));
      assert.equal(reset.code, ResponseCode.Success, remarkOf(reset));
      const table = fastjsonQueueTable(reset.body?.toString() ?? '', 'offsetTable');
      assert.equal(table.get('CtlReset:0'), expected);
      assert.equal((await h.call(queryOffset('gReset', 'CtlReset', 0))).extFields['offset'], String(expected));
      await eventually(() => assert.equal(resets.length, 1));
      const [notice] = resets;
      assert.equal(notice?.extFields['group'], 'gReset');
      assert.equal(notice?.extFields['timestamp'], String(timestamp));
      assert.equal(fastjsonQueueTable(notice?.body?.toString() ?? '', 'offsetTable').get('CtlReset:0'), expected);
      const toMax = await h.call(resetRequest('gReset', 'CtlReset', -1));
      assert.equal(fastjsonQueueTable(toMax.body?.toString() ?? '', 'offsetTable').get('CtlReset:0'), 6);
    } finally {
      await member.close();
    }
  });

  it('rejects invalid tag expressions in pulls and heartbeats with SUBSCRIPTION_PARSE_FAILED', async () => {
    for (const bad of ['a || || b', '|| a', 'a ||', 'a | b', 'tag with space']) {
      const pulled = await h.call(pullRequest('CtlStats', 0, { subscription: bad }));
      assert.equal(pulled.code, ResponseCode.SubscriptionParseFailed, `pull "${bad}"`);
      assert.match(remarkOf(pulled), /subscription failed/);
    }
    const good = await h.call(pullRequest('CtlStats', 0, { subscription: 'a.*.c || x.# || plain' }));
    assert.notEqual(good.code, ResponseCode.SubscriptionParseFailed);
    const beat = await h.call(heartbeatRequest('client-bad', 'gBadSub', 'CtlStats', 'a || || b'));
    assert.equal(beat.code, ResponseCode.SubscriptionParseFailed);
    assert.match(remarkOf(beat), /empty alternative/);
  });
});
