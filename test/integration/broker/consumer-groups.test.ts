import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeRecords } from '../../../src/engine/common/message-record.js';
import { ProcessorRegistry } from '../../../src/engine/remoting/channel.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest } from '../../../src/engine/remoting/command.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';
import { eventually } from '../../helpers/eventually.js';
import {
  type BrokerHarness,
  heartbeatRequest,
  pullRequest,
  remarkOf,
  sendV2Request,
  startHarness,
} from './broker-harness.js';

/** A consumer connection with its own registry that records NOTIFY_CONSUMER_IDS_CHANGED. */
function consumerClient(): { client: RemotingClient; notified: string[] } {
  const notified: string[] = [];
  const registry = new ProcessorRegistry().register(RequestCode.NotifyConsumerIdsChanged, (request) => {
    notified.push(request.extFields['consumerGroup'] ?? '');
    return undefined;
  });
  return { client: new RemotingClient({ registry }), notified };
}

async function consumerIds(h: BrokerHarness, group: string): Promise<string[]> {
  const response = await h.call(createRequest(RequestCode.GetConsumerListByGroup, { consumerGroup: group }));
  if (response.code !== ResponseCode.Success) return [];
  return (JSON.parse(response.body?.toString() ?? '{}') as { consumerIdList: string[] }).consumerIdList.sort();
}

describe('broker consumer groups', () => {
  let h: BrokerHarness;
  const clients: RemotingClient[] = [];
  before(async () => {
    // Short delay levels: a sent-back message waits for level 3 before it reaches the retry topic.
    h = await startHarness({ messageDelayLevel: '10ms 20ms 30ms 40ms 50ms' });
  });
  after(async () => {
    for (const client of clients) await client.close();
    await h?.close();
  });

  it('lists the members of a group after their heartbeats and notifies them of a new member', async () => {
    const first = consumerClient();
    const second = consumerClient();
    clients.push(first.client, second.client);
    const beat1 = await first.client.invoke(h.broker.address, heartbeatRequest('client-1', 'groupA', 'Members'), 5000);
    assert.equal(beat1.code, ResponseCode.Success, remarkOf(beat1));
    assert.deepEqual(await consumerIds(h, 'groupA'), ['client-1']);
    const notifiedBefore = first.notified.length;

    const beat2 = await second.client.invoke(h.broker.address, heartbeatRequest('client-2', 'groupA', 'Members'), 5000);
    assert.equal(beat2.code, ResponseCode.Success, remarkOf(beat2));
    assert.deepEqual(await consumerIds(h, 'groupA'), ['client-1', 'client-2']);
    await eventually(() => first.notified.length > notifiedBefore);
    assert.equal(first.notified.at(-1), 'groupA');
    // The new member hears of the change too (RocketMQ notifies every channel of the group).
    await eventually(() => second.notified.includes('groupA'));

    // A repeated heartbeat from a known member changes nothing and notifies nobody.
    const count = first.notified.length;
    await second.client.invoke(h.broker.address, heartbeatRequest('client-2', 'groupA', 'Members'), 5000);
    assert.equal(first.notified.length, count);

    // When a member's connection closes it leaves the group and the others hear of it.
    await second.client.close();
    await eventually(async () => assert.deepEqual(await consumerIds(h, 'groupA'), ['client-1']));
    await eventually(() => first.notified.length > count);
  });

  it('answers SYSTEM_ERROR for the member list of a group without members', async () => {
    const response = await h.call(createRequest(RequestCode.GetConsumerListByGroup, { consumerGroup: 'nobody' }));
    assert.equal(response.code, ResponseCode.SystemError);
    assert.match(remarkOf(response), /no consumer/);
  });

  it('removes a member on UNREGISTER_CLIENT', async () => {
    const member = consumerClient();
    clients.push(member.client);
    await member.client.invoke(h.broker.address, heartbeatRequest('client-u', 'groupU', 'Members'), 5000);
    assert.deepEqual(await consumerIds(h, 'groupU'), ['client-u']);
    const response = await member.client.invoke(
      h.broker.address,
      createRequest(RequestCode.UnregisterClient, { clientID: 'client-u', consumerGroup: 'groupU' }),
      5000,
    );
    assert.equal(response.code, ResponseCode.Success, remarkOf(response));
    assert.deepEqual(await consumerIds(h, 'groupU'), []);
  });

  it('creates the retry topic of a group on its heartbeat', async () => {
    const member = consumerClient();
    clients.push(member.client);
    await member.client.invoke(h.broker.address, heartbeatRequest('client-r', 'groupR', 'Members'), 5000);
    const topics = await h.call(createRequest(RequestCode.GetAllTopicConfig));
    const wrapper = JSON.parse(topics.body?.toString() ?? '{}') as {
      topicConfigTable: Record<string, { readQueueNums: number; perm: number }>;
    };
    assert.equal(wrapper.topicConfigTable['%RETRY%groupR']?.readQueueNums, 1);
    assert.equal(wrapper.topicConfigTable['%RETRY%groupR']?.perm, 6);
  });

  it('filters a pull without subscription flag by the subscription of the group heartbeat', async () => {
    for (const tags of ['A', 'B']) await h.call(sendV2Request('SubByBeat', Buffer.from(tags), { tags, queueId: 0 }));
    const noGroup = await h.call(pullRequest('SubByBeat', 0, { group: 'groupS', sysFlag: 0 }));
    assert.equal(noGroup.code, ResponseCode.SubscriptionNotExist);

    const member = consumerClient();
    clients.push(member.client);
    await member.client.invoke(h.broker.address, heartbeatRequest('client-s', 'groupS', 'SubByBeat', 'B'), 5000);
    const pulled = await member.client.invoke(
      h.broker.address,
      pullRequest('SubByBeat', 0, { group: 'groupS', sysFlag: 0 }),
      5000,
    );
    assert.equal(pulled.code, ResponseCode.Success, remarkOf(pulled));
    assert.deepEqual(
      decodeRecords(pulled.body ?? Buffer.alloc(0)).map((m) => m.body.toString()),
      ['B'],
    );
  });

  it('compares nanosecond subscription versions of the Go client exactly', async () => {
    await h.call(sendV2Request('GoVersion', Buffer.from('go'), { queueId: 0 }));
    const member = consumerClient();
    clients.push(member.client);
    const subVersion = '1795518203242123457';
    const beat = await member.client.invoke(
      h.broker.address,
      heartbeatRequest('client-go', 'groupGo', 'GoVersion', '*', subVersion),
      5000,
    );
    assert.equal(beat.code, ResponseCode.Success, remarkOf(beat));
    const pull = (version: string) =>
      member.client.invoke(
        h.broker.address,
        pullRequest('GoVersion', 0, { group: 'groupGo', sysFlag: 0, subVersion: version }),
        5000,
      );
    const same = await pull(subVersion);
    assert.equal(same.code, ResponseCode.Success, remarkOf(same));
    const newer = await pull('1795518203242123458');
    assert.equal(newer.code, ResponseCode.SubscriptionNotLatest, remarkOf(newer));
  });

  it('re-stores a message sent back by a consumer in the retry topic, then in the DLQ', async () => {
    const sent = await h.call(sendV2Request('SendBack', Buffer.from('retry me'), { queueId: 0, tags: 'T' }));
    const msgId = sent.extFields['msgId'] ?? '';
    const commitLogOffset = Number(BigInt(`0x${msgId.slice(16)}`));
    const back = await h.call(
      createRequest(RequestCode.ConsumerSendMsgBack, {
        offset: String(commitLogOffset),
        group: 'groupB',
        delayLevel: '0',
        originMsgId: msgId,
        originTopic: 'SendBack',
        unitMode: 'false',
        maxReconsumeTimes: '1',
      }),
    );
    assert.equal(back.code, ResponseCode.Success, remarkOf(back));
    const retry = await eventually(async () => {
      const pulled = await h.call(pullRequest('%RETRY%groupB', 0, { group: 'groupB' }));
      assert.equal(pulled.code, ResponseCode.Success, remarkOf(pulled));
      return pulled;
    });
    const [retried] = decodeRecords(retry.body ?? Buffer.alloc(0));
    assert.ok(retried);
    assert.equal(retried.body.toString(), 'retry me');
    assert.equal(retried.reconsumeTimes, 1);
    assert.equal(retried.properties['RETRY_TOPIC'], 'SendBack');
    assert.equal(retried.properties['ORIGIN_MESSAGE_ID'], msgId);
    assert.equal(retried.properties['TAGS'], 'T');

    // The retried message fails again: reconsumeTimes (1) reached maxReconsumeTimes (1), so DLQ.
    const again = await h.call(
      createRequest(RequestCode.ConsumerSendMsgBack, {
        offset: String(retried.commitLogOffset),
        group: 'groupB',
        delayLevel: '0',
        maxReconsumeTimes: '1',
      }),
    );
    assert.equal(again.code, ResponseCode.Success, remarkOf(again));
    const dlq = await h.call(pullRequest('%DLQ%groupB', 0, { group: 'groupB' }));
    assert.equal(dlq.code, ResponseCode.Success, remarkOf(dlq));
    const [dead] = decodeRecords(dlq.body ?? Buffer.alloc(0));
    assert.equal(dead?.body.toString(), 'retry me');
    assert.equal(dead?.properties['ORIGIN_MESSAGE_ID'], msgId);
    assert.equal(dead?.properties['RETRY_TOPIC'], 'SendBack');
  });

  it('drops a consumer channel that stops sending heartbeats', async () => {
    const expiring = await startHarness({ clientChannelExpiryMs: 200, clientChannelScanIntervalMs: 50 });
    const member = consumerClient();
    try {
      await member.client.invoke(expiring.broker.address, heartbeatRequest('client-x', 'groupX', 'Members'), 5000);
      assert.deepEqual(await consumerIds(expiring, 'groupX'), ['client-x']);
      await eventually(async () => assert.deepEqual(await consumerIds(expiring, 'groupX'), []), { timeoutMs: 3000 });
    } finally {
      await member.client.close();
      await expiring.close();
    }
  });
});
