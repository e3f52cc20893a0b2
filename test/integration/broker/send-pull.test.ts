import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeRecords } from '../../../src/engine/common/message-record.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest } from '../../../src/engine/remoting/command.js';
import { eventually } from '../../helpers/eventually.js';
import {
  type BrokerHarness,
  createTopicRequest,
  encodeBatchEntry,
  pullRequest,
  remarkOf,
  sendBatchRequest,
  sendV1Request,
  sendV2Request,
  startHarness,
} from './broker-harness.js';

describe('broker send and pull', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h?.close();
  });

  it('stores a v2 send and returns the exact record on pull', async () => {
    const body = Buffer.from('hello v2');
    const sent = await h.call(sendV2Request('SendV2', body, { tags: 'TagA', keys: 'k1 k2', queueId: 1 }));
    assert.equal(sent.code, ResponseCode.Success, remarkOf(sent));
    assert.equal(sent.extFields['queueId'], '1');
    assert.equal(sent.extFields['queueOffset'], '0');
    assert.match(sent.extFields['msgId'] ?? '', /^[0-9A-F]{32}$/);

    const pulled = await h.call(pullRequest('SendV2', 1));
    assert.equal(pulled.code, ResponseCode.Success, remarkOf(pulled));
    assert.equal(pulled.extFields['nextBeginOffset'], '1');
    assert.equal(pulled.extFields['minOffset'], '0');
    assert.equal(pulled.extFields['maxOffset'], '1');
    assert.equal(pulled.extFields['suggestWhichBrokerId'], '0');
    const [message, ...rest] = decodeRecords(pulled.body ?? Buffer.alloc(0));
    assert.equal(rest.length, 0);
    assert.ok(message);
    assert.deepEqual(message.body, body);
    assert.equal(message.topic, 'SendV2');
    assert.equal(message.queueId, 1);
    assert.equal(message.properties['TAGS'], 'TagA');
    assert.equal(message.properties['KEYS'], 'k1 k2');
    assert.equal(message.msgId, sent.extFields['msgId']);
    assert.equal(message.bornHost.host, '127.0.0.1');
    assert.equal(message.storeHost.port, h.broker.port);
    // The pull body is the stored record byte for byte.
    const viewed = await h.call(
      createRequest(RequestCode.ViewMessageById, { offset: String(message.commitLogOffset) }),
    );
    assert.deepEqual(viewed.body, pulled.body);
  });

  it('stores a v1 send with long header names', async () => {
    const sent = await h.call(sendV1Request('SendV1', Buffer.from('hello v1'), { queueId: 0 }));
    assert.equal(sent.code, ResponseCode.Success, remarkOf(sent));
    const pulled = await h.call(pullRequest('SendV1', 0));
    const messages = decodeRecords(pulled.body ?? Buffer.alloc(0));
    assert.equal(messages.length, 1);
    assert.equal(messages[0]?.body.toString(), 'hello v1');
  });

  it('stores a batch in one queue and answers with every message id', async () => {
    const entries = [0, 1, 2].map((i) => encodeBatchEntry(Buffer.from(`batch-${i}`), { KEYS: `key-${i}` }, i));
    const sent = await h.call(sendBatchRequest('SendBatch', entries, 2));
    assert.equal(sent.code, ResponseCode.Success, remarkOf(sent));
    const ids = (sent.extFields['msgId'] ?? '').split(',');
    assert.equal(ids.length, 3);
    const pulled = await h.call(pullRequest('SendBatch', 2));
    const messages = decodeRecords(pulled.body ?? Buffer.alloc(0));
    assert.deepEqual(
      messages.map((m) => [m.body.toString(), m.flag, m.properties['KEYS'], m.queueOffset, m.msgId]),
      [0, 1, 2].map((i) => [`batch-${i}`, i, `key-${i}`, i, ids[i]]),
    );
  });

  it('spreads sends without a queue id over the write queues', async () => {
    const queues = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const sent = await h.call(sendV2Request('RoundRobin', Buffer.from(`m${i}`)));
      assert.equal(sent.code, ResponseCode.Success, remarkOf(sent));
      queues.add(sent.extFields['queueId'] ?? '');
    }
    assert.deepEqual([...queues].sort(), ['0', '1', '2', '3']);
  });

  it('filters a pull by tag on the broker', async () => {
    for (const tags of ['TagA', 'TagB', 'TagA', 'TagC']) {
      const sent = await h.call(sendV2Request('Tagged', Buffer.from(tags), { tags, queueId: 0 }));
      assert.equal(sent.code, ResponseCode.Success, remarkOf(sent));
    }
    const pulled = await h.call(pullRequest('Tagged', 0, { subscription: 'TagA || TagC' }));
    assert.equal(pulled.code, ResponseCode.Success, remarkOf(pulled));
    const messages = decodeRecords(pulled.body ?? Buffer.alloc(0));
    assert.deepEqual(
      messages.map((m) => [m.properties['TAGS'], m.queueOffset]),
      [
        ['TagA', 0],
        ['TagA', 2],
        ['TagC', 3],
      ],
    );
    assert.equal(pulled.extFields['nextBeginOffset'], '4');
  });

  it('answers PULL_NOT_FOUND at the end of a queue and PULL_OFFSET_MOVED past it', async () => {
    await h.call(sendV2Request('EndOfQueue', Buffer.from('x'), { queueId: 0 }));
    const atEnd = await h.call(pullRequest('EndOfQueue', 0, { queueOffset: 1 }));
    assert.equal(atEnd.code, ResponseCode.PullNotFound);
    assert.equal(atEnd.extFields['nextBeginOffset'], '1');
    const pastEnd = await h.call(pullRequest('EndOfQueue', 0, { queueOffset: 50 }));
    assert.equal(pastEnd.code, ResponseCode.PullOffsetMoved);
  });

  it('answers TOPIC_NOT_EXIST when pulling an unknown topic', async () => {
    const pulled = await h.call(pullRequest('NoSuchTopic', 0));
    assert.equal(pulled.code, ResponseCode.TopicNotExist);
    assert.match(remarkOf(pulled), /NoSuchTopic/);
  });

  it('publishes a created topic route to the NameServer', async () => {
    const created = await h.call(createTopicRequest('Routed', 3));
    assert.equal(created.code, ResponseCode.Success, remarkOf(created));
    const route = await eventually(async () => {
      const response = await h.client.invoke(
        h.nameServer.address,
        createRequest(RequestCode.GetRouteInfoByTopic, { topic: 'Routed' }),
        5000,
      );
      assert.equal(response.code, ResponseCode.Success, remarkOf(response));
      return response;
    });
    const text = route.body?.toString() ?? '';
    assert.match(text, /"writeQueueNums":3/);
    assert.ok(text.includes(h.broker.address), text);
  });

  it('publishes an auto-created topic route to the NameServer', async () => {
    await h.call(sendV2Request('AutoRouted', Buffer.from('x')));
    await eventually(async () => {
      const route = await h.client.invoke(
        h.nameServer.address,
        createRequest(RequestCode.GetRouteInfoByTopic, { topic: 'AutoRouted' }),
        5000,
      );
      assert.equal(route.code, ResponseCode.Success);
    });
  });

  it('finds a message by offset id and by key', async () => {
    const sent = await h.call(sendV2Request('Lookup', Buffer.from('find me'), { keys: 'order-42', queueId: 0 }));
    assert.equal(sent.code, ResponseCode.Success, remarkOf(sent));
    const msgId = sent.extFields['msgId'] ?? '';
    const commitLogOffset = Number(BigInt(`0x${msgId.slice(16)}`));
    const viewed = await h.call(createRequest(RequestCode.ViewMessageById, { offset: String(commitLogOffset) }));
    assert.equal(viewed.code, ResponseCode.Success, remarkOf(viewed));
    assert.equal(decodeRecords(viewed.body ?? Buffer.alloc(0))[0]?.body.toString(), 'find me');

    const found = await eventually(async () => {
      const response = await h.call(
        createRequest(RequestCode.QueryMessage, {
          topic: 'Lookup',
          key: 'order-42',
          maxNum: '10',
          beginTimestamp: '0',
          endTimestamp: String(Date.now() + 1000),
        }),
      );
      assert.equal(response.code, ResponseCode.Success, remarkOf(response));
      return response;
    });
    const messages = decodeRecords(found.body ?? Buffer.alloc(0));
    assert.equal(messages.length, 1);
    assert.equal(messages[0]?.msgId, msgId);
    assert.ok(found.extFields['indexLastUpdateTimestamp']);
    assert.ok(found.extFields['indexLastUpdatePhyoffset']);

    const missing = await h.call(
      createRequest(RequestCode.QueryMessage, {
        topic: 'Lookup',
        key: 'no-such-key',
        maxNum: '10',
        beginTimestamp: '0',
        endTimestamp: String(Date.now() + 1000),
      }),
    );
    assert.equal(missing.code, ResponseCode.QueryNotFound);
  });

  it('reports queue offsets, store times and runtime info', async () => {
    const before = Date.now();
    for (let i = 0; i < 3; i++) await h.call(sendV2Request('Offsets', Buffer.from(`o${i}`), { queueId: 0 }));
    const ask = async (code: number, extra: Record<string, string> = {}): Promise<Record<string, string>> => {
      const response = await h.call(createRequest(code, { topic: 'Offsets', queueId: '0', ...extra }));
      assert.equal(response.code, ResponseCode.Success, remarkOf(response));
      return response.extFields;
    };
    assert.equal((await ask(RequestCode.GetMaxOffset))['offset'], '3');
    assert.equal((await ask(RequestCode.GetMinOffset))['offset'], '0');
    const earliest = Number((await ask(RequestCode.GetEarliestMsgStoretime))['timestamp']);
    assert.ok(earliest >= before - 1000 && earliest <= Date.now(), `earliest ${earliest}`);
    const search = await ask(RequestCode.SearchOffsetByTimestamp, { timestamp: String(before - 60_000) });
    assert.equal(search['offset'], '0');

    const info = await h.call(createRequest(RequestCode.GetBrokerRuntimeInfo));
    const table = (JSON.parse(info.body?.toString() ?? '{}') as { table: Record<string, string> }).table;
    assert.ok(Number(table['msgPutTotalTodayNow']) >= 3);
    assert.ok(Number(table['commitLogMaxOffset']) > 0);

    const topics = await h.call(createRequest(RequestCode.GetAllTopicConfig));
    const wrapper = JSON.parse(topics.body?.toString() ?? '{}') as {
      topicConfigTable: Record<string, { perm: number }>;
    };
    assert.equal(wrapper.topicConfigTable['TBW102']?.perm, 7);
    assert.ok(wrapper.topicConfigTable['Offsets']);
    assert.ok(wrapper.topicConfigTable['broker-a']);
    assert.ok(wrapper.topicConfigTable['DefaultCluster']);
    assert.ok(wrapper.topicConfigTable['SELF_TEST_TOPIC']);
  });
});

describe('broker without topic auto-creation', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await startHarness({ autoCreateTopicEnable: false });
  });
  after(async () => {
    await h?.close();
  });

  it('answers TOPIC_NOT_EXIST for a send to an unknown topic', async () => {
    const sent = await h.call(sendV2Request('NotCreated', Buffer.from('x')));
    assert.equal(sent.code, ResponseCode.TopicNotExist);
    assert.match(remarkOf(sent), /NotCreated.*not exist.*auto-create/);
  });

  it('accepts sends once the topic is created by an admin', async () => {
    assert.equal((await h.call(createTopicRequest('Created', 2))).code, ResponseCode.Success);
    const sent = await h.call(sendV2Request('Created', Buffer.from('x')));
    assert.equal(sent.code, ResponseCode.Success, remarkOf(sent));
  });

  it('does not offer the TBW102 template', async () => {
    const topics = await h.call(createRequest(RequestCode.GetAllTopicConfig));
    const wrapper = JSON.parse(topics.body?.toString() ?? '{}') as { topicConfigTable: Record<string, unknown> };
    assert.equal(wrapper.topicConfigTable['TBW102'], undefined);
  });
});
