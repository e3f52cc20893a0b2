import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ResponseCode, RequestCode } from '../../../src/engine/remoting/codes.js';
import { createRequest, type RemotingCommand } from '../../../src/engine/remoting/command.js';
import { seededRandom, testSeed } from '../../helpers/seed.js';
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
} from '../../integration/broker/broker-harness.js';

function without(request: RemotingCommand, field: string): RemotingCommand {
  delete request.extFields[field];
  return request;
}

function withField(request: RemotingCommand, field: string, value: string): RemotingCommand {
  request.extFields[field] = value;
  return request;
}

describe('broker answers bad requests with errors and stores nothing', () => {
  let h: BrokerHarness;
  let commitLogMaxOffset = 0;
  before(async () => {
    h = await startHarness();
    assert.equal((await h.call(createTopicRequest('Valid', 2))).code, ResponseCode.Success);
    assert.equal((await h.call(createTopicRequest('ReadOnly', 1, 4))).code, ResponseCode.Success);
    assert.equal(
      (await h.call(sendV2Request('Valid', Buffer.from('seed'), { queueId: 0 }))).code,
      ResponseCode.Success,
    );
    commitLogMaxOffset = h.broker.store.stats().commitLogMaxOffset;
  });
  after(async () => {
    await h?.close();
  });

  async function expectError(request: RemotingCommand, code: number, remark: RegExp): Promise<void> {
    const response = await h.call(request);
    assert.equal(response.code, code, `code ${response.code}: ${remarkOf(response)}`);
    assert.match(remarkOf(response), remark);
  }

  it('rejects sends with missing or malformed header fields', async () => {
    await expectError(without(sendV2Request('Valid', Buffer.from('x')), 'b'), ResponseCode.SystemError, /topic/);
    await expectError(
      without(sendV2Request('Valid', Buffer.from('x')), 'a'),
      ResponseCode.SystemError,
      /producerGroup/,
    );
    await expectError(
      withField(sendV2Request('Valid', Buffer.from('x')), 'e', 'abc'),
      ResponseCode.SystemError,
      /queueId.*not an integer/,
    );
    await expectError(
      withField(sendV2Request('Valid', Buffer.from('x')), 'g', '99999999999999999999999'),
      ResponseCode.SystemError,
      /bornTimestamp/,
    );
    await expectError(
      withField(sendV1Request('Valid', Buffer.from('x')), 'sysFlag', '1.5'),
      ResponseCode.SystemError,
      /sysFlag/,
    );
    await expectError(
      withField(sendV2Request('Valid', Buffer.from('x')), 'k', 'maybe'),
      ResponseCode.SystemError,
      /unitMode.*boolean/,
    );
  });

  it('rejects sends to invalid, forbidden or read-only topics and to queues that do not exist', async () => {
    await expectError(sendV2Request('bad topic!', Buffer.from('x')), ResponseCode.SystemError, /may only contain/);
    await expectError(sendV2Request('x'.repeat(200), Buffer.from('x')), ResponseCode.SystemError, /longer/);
    await expectError(sendV2Request('SCHEDULE_TOPIC_XXXX', Buffer.from('x')), ResponseCode.NoPermission, /forbidden/);
    await expectError(sendV2Request('%DLQ%group', Buffer.from('x')), ResponseCode.NoPermission, /forbidden/);
    await expectError(sendV2Request('ReadOnly', Buffer.from('x')), ResponseCode.NoPermission, /forbidden/);
    await expectError(
      sendV2Request('Valid', Buffer.from('x'), { queueId: 2 }),
      ResponseCode.SystemError,
      /queueId\[2\] is illegal/,
    );
    await expectError(
      sendV2Request('NewTopic', Buffer.from('x'), { defaultTopic: 'NoTemplate' }),
      ResponseCode.TopicNotExist,
      /NewTopic/,
    );
  });

  it('rejects a body over the store limit and properties over 32 KiB', async () => {
    const tooBig = Buffer.alloc(4 * 1024 * 1024 + 1); // testBrokerConfig keeps the 4 MiB maxMessageBytes
    await expectError(sendV2Request('Valid', tooBig, { queueId: 0 }), ResponseCode.MessageIllegal, /.+/);
    const longProperty = { properties: { BIG: 'x'.repeat(40_000) }, queueId: 0 };
    await expectError(sendV2Request('Valid', Buffer.from('x'), longProperty), ResponseCode.MessageIllegal, /propert/i);
  });

  it('rejects malformed batch bodies', async () => {
    const good = encodeBatchEntry(Buffer.from('ok'), { KEYS: 'k' });
    await expectError(sendBatchRequest('Valid', [], 0), ResponseCode.MessageIllegal, /no messages/);
    await expectError(sendBatchRequest('Valid', [good.subarray(0, 10)], 0), ResponseCode.MessageIllegal, /truncated/);
    await expectError(
      sendBatchRequest('Valid', [good, good.subarray(0, good.length - 1)], 0),
      ResponseCode.MessageIllegal,
      /batch/,
    );
    const wrongTotal = Buffer.from(good);
    wrongTotal.writeInt32BE(good.length + 5, 0);
    await expectError(sendBatchRequest('Valid', [wrongTotal], 0), ResponseCode.MessageIllegal, /inconsistent/);
    const hugeBody = Buffer.from(good);
    hugeBody.writeInt32BE(0x7fffffff, 16);
    await expectError(sendBatchRequest('Valid', [hugeBody], 0), ResponseCode.MessageIllegal, /body length/);
    const retry = sendBatchRequest('%RETRY%g', [good], 0);
    await expectError(retry, ResponseCode.MessageIllegal, /retry/);
  });

  it('rejects pulls with missing or impossible fields', async () => {
    await expectError(without(pullRequest('Valid', 0), 'consumerGroup'), ResponseCode.SystemError, /consumerGroup/);
    await expectError(without(pullRequest('Valid', 0), 'queueOffset'), ResponseCode.SystemError, /queueOffset/);
    await expectError(pullRequest('Valid', 7), ResponseCode.SystemError, /queueId\[7\] is illegal/);
    await expectError(pullRequest('Valid', -1), ResponseCode.SystemError, /queueId\[-1\] is illegal/);
    await expectError(pullRequest('Valid', 0, { queueOffset: -5 }), ResponseCode.SystemError, /negative/);
    await expectError(pullRequest('Valid', 0, { maxMsgNums: 0 }), ResponseCode.SystemError, /maxMsgNums/);
    await expectError(pullRequest('bad/topic', 0), ResponseCode.SystemError, /may only contain/);
    await expectError(
      withField(pullRequest('Valid', 0), 'expressionType', 'SQL92'),
      ResponseCode.SubscriptionParseFailed,
      /SQL92/,
    );
  });

  it('rejects heartbeats whose body is missing or malformed', async () => {
    const beat = (body?: string): RemotingCommand =>
      createRequest(RequestCode.HeartBeat, {}, body === undefined ? undefined : Buffer.from(body));
    await expectError(beat(), ResponseCode.SystemError, /bad heartbeat body: the body is empty/);
    await expectError(beat('{not json'), ResponseCode.SystemError, /not JSON/);
    await expectError(beat('[1,2]'), ResponseCode.SystemError, /not an object/);
    await expectError(beat('{"producerDataSet":[]}'), ResponseCode.SystemError, /clientID/);
    await expectError(beat('{"clientID":"c","consumerDataSet":{}}'), ResponseCode.SystemError, /consumerDataSet/);
    await expectError(beat('{"clientID":"c","consumerDataSet":[{"x":1}]}'), ResponseCode.SystemError, /groupName/);
    await expectError(
      beat('{"clientID":"c","consumerDataSet":[{"groupName":"g","subscriptionDataSet":[{"subString":"*"}]}]}'),
      ResponseCode.SystemError,
      /topic/,
    );
  });

  it('accepts a heartbeat written by fastjson with bare keys', async () => {
    const body = '{clientID:"java-1",consumerDataSet:[],producerDataSet:[{groupName:"pg"}]}';
    const response = await h.call(createRequest(RequestCode.HeartBeat, {}, Buffer.from(body)));
    assert.equal(response.code, ResponseCode.Success, remarkOf(response));
  });

  it('rejects offset requests with missing or bad fields', async () => {
    const update = (fields: Record<string, string>): RemotingCommand =>
      createRequest(RequestCode.UpdateConsumerOffset, fields);
    await expectError(
      update({ topic: 'Valid', queueId: '0', commitOffset: '1' }),
      ResponseCode.SystemError,
      /consumerGroup/,
    );
    await expectError(
      update({ consumerGroup: 'g', topic: 'Valid', queueId: '0' }),
      ResponseCode.SystemError,
      /commitOffset/,
    );
    await expectError(
      update({ consumerGroup: 'g', topic: 'Valid', queueId: '0', commitOffset: '-3' }),
      ResponseCode.SystemError,
      /negative/,
    );
    await expectError(
      update({ consumerGroup: 'g', topic: 'Valid', queueId: 'x', commitOffset: '1' }),
      ResponseCode.SystemError,
      /queueId/,
    );
    await expectError(
      createRequest(RequestCode.QueryConsumerOffset, { consumerGroup: 'g', topic: 'a b', queueId: '0' }),
      ResponseCode.SystemError,
      /may only contain/,
    );
    const query = await h.call(
      createRequest(RequestCode.QueryConsumerOffset, { consumerGroup: 'g', topic: 'Valid', queueId: '0' }),
    );
    assert.equal(query.extFields['offset'], '0', 'a rejected update must not have stored an offset');
  });

  it('rejects topic creation with bad fields', async () => {
    const create = (fields: Record<string, string>): RemotingCommand =>
      createRequest(RequestCode.UpdateAndCreateTopic, {
        topic: 'Made',
        readQueueNums: '1',
        writeQueueNums: '1',
        ...fields,
      });
    await expectError(create({ readQueueNums: 'many' }), ResponseCode.SystemError, /readQueueNums/);
    await expectError(create({ writeQueueNums: '100000' }), ResponseCode.SystemError, /writeQueueNums/);
    await expectError(create({ perm: '99' }), ResponseCode.SystemError, /perm/);
    await expectError(create({ topic: 'DefaultCluster' }), ResponseCode.SystemError, /conflict/);
    await expectError(create({ topicFilterType: 'WHATEVER' }), ResponseCode.SystemError, /topicFilterType/);
    await expectError(create({ topic: '' }), ResponseCode.SystemError, /empty/);
    const topics = await h.call(createRequest(RequestCode.GetAllTopicConfig));
    assert.equal(topics.body?.toString().includes('"Made"'), false);
  });

  it('rejects lookups and send-backs that name nothing stored', async () => {
    await expectError(
      createRequest(RequestCode.ViewMessageById, { offset: '999999999' }),
      ResponseCode.SystemError,
      /can not find/,
    );
    await expectError(createRequest(RequestCode.ViewMessageById, { offset: 'zz' }), ResponseCode.SystemError, /offset/);
    await expectError(createRequest(RequestCode.ViewMessageById, {}), ResponseCode.SystemError, /offset/);
    await expectError(
      createRequest(RequestCode.QueryMessage, { topic: 'Valid', maxNum: '1', beginTimestamp: '0', endTimestamp: '1' }),
      ResponseCode.SystemError,
      /key/,
    );
    await expectError(createRequest(RequestCode.GetMaxOffset, { topic: 'Valid' }), ResponseCode.SystemError, /queueId/);
    await expectError(
      createRequest(RequestCode.SearchOffsetByTimestamp, { topic: 'Valid', queueId: '0', timestamp: 'now' }),
      ResponseCode.SystemError,
      /timestamp/,
    );
    await expectError(
      createRequest(RequestCode.ConsumerSendMsgBack, { offset: '123456789', group: 'g', delayLevel: '0' }),
      ResponseCode.SystemError,
      /look message by offset failed/,
    );
    await expectError(
      createRequest(RequestCode.ConsumerSendMsgBack, { offset: '0', delayLevel: '0' }),
      ResponseCode.SystemError,
      /group/,
    );
  });

  it('joins a badly named consumer group without creating a retry topic for it', async () => {
    const body = {
      clientID: 'odd-client',
      consumerDataSet: [{ groupName: 'bad group!', subscriptionDataSet: [{ topic: 'Valid', subString: '*' }] }],
    };
    const beat = await h.call(createRequest(RequestCode.HeartBeat, {}, Buffer.from(JSON.stringify(body))));
    assert.equal(beat.code, ResponseCode.Success, remarkOf(beat));
    const topics = await h.call(createRequest(RequestCode.GetAllTopicConfig));
    assert.equal(topics.body?.toString().includes('bad group!'), false);
    await expectError(
      createRequest(RequestCode.ConsumerSendMsgBack, { offset: '0', group: 'bad group!', delayLevel: '0' }),
      ResponseCode.SystemError,
      /not a valid name/,
    );
  });

  it('answers REQUEST_CODE_NOT_SUPPORTED for an unknown request code', async () => {
    await expectError(createRequest(9999, {}), ResponseCode.RequestCodeNotSupported, /not supported/);
  });

  it('stored nothing for any rejected request', () => {
    assert.equal(h.broker.store.stats().commitLogMaxOffset, commitLogMaxOffset);
  });

  it('survives seeded random header fields on every request code and stays usable', async () => {
    const seed = testSeed();
    const random = seededRandom(seed);
    const codes = [10, 11, 12, 14, 15, 17, 21, 28, 29, 30, 31, 32, 33, 34, 35, 36, 38, 310, 320];
    const names = [
      'a',
      'b',
      'e',
      'g',
      'topic',
      'queueId',
      'queueOffset',
      'consumerGroup',
      'offset',
      'group',
      'maxNum',
      'key',
    ];
    const values = ['', '-1', '0', '1', 'NaN', '1e9', '-99999999999999999999', 'Valid', '%RETRY%x', '\u0000', 'true'];
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    for (let i = 0; i < 200; i++) {
      const fields: Record<string, string> = {};
      for (let f = 0; f < 4; f++) fields[pick(names)] = pick(values);
      const body =
        random() < 0.5
          ? Buffer.from(Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256)))
          : undefined;
      const response = await h.call(createRequest(pick(codes), fields, body));
      assert.equal(typeof response.code, 'number', `seed ${seed}`);
      // Rejections come from our checks, never from a processor tripping over the input.
      assert.doesNotMatch(
        remarkOf(response),
        /TypeError|RangeError|Cannot read|is not a function|undefined/,
        `seed ${seed}`,
      );
    }
    const sent = await h.call(sendV2Request('Valid', Buffer.from('still works'), { queueId: 1 }));
    assert.equal(sent.code, ResponseCode.Success, `seed ${seed}: ${remarkOf(sent)}`);
  });
});
