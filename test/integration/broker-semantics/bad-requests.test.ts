import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest } from '../../../src/engine/remoting/command.js';
import {
  type BrokerHarness,
  createTopicRequest,
  remarkOf,
  sendV2Request,
  startHarness,
} from '../broker/broker-harness.js';
import { popRequest } from './semantics-requests.js';

describe('bad consumer-semantics requests', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await startHarness();
    await h.call(createTopicRequest('BadSem', 1));
  });
  after(async () => {
    await h?.close();
  });

  it('answers malformed pop, ack and change requests with an error code and keeps serving', async () => {
    const cases = [
      createRequest(RequestCode.PopMessage, { consumerGroup: 'g', topic: 'BadSem' }),
      popRequest('g', 'BadSem', { maxMsgNums: 1000 }),
      popRequest('g', 'BadSem', { invisibleTimeMs: 0 }),
      popRequest('g', 'NoSuchTopic'),
      popRequest('g', 'BadSem', { queueId: 9 }),
      createRequest(RequestCode.AckMessage, {
        consumerGroup: 'g',
        topic: 'BadSem',
        queueId: '0',
        offset: '0',
        extraInfo: 'garbage',
      }),
      createRequest(RequestCode.AckMessage, { consumerGroup: 'g', topic: 'BadSem', queueId: 'x', offset: '0' }),
      createRequest(RequestCode.ChangeMessageInvisibleTime, {
        consumerGroup: 'g',
        topic: 'BadSem',
        queueId: '0',
        offset: '0',
        extraInfo: '0 1 2 0 0 b 0 0',
        invisibleTime: '-5',
      }),
    ];
    for (const request of cases) {
      const response = await h.call(request);
      assert.notEqual(response.code, ResponseCode.Success, JSON.stringify(request.extFields));
      assert.ok(remarkOf(response).length > 0);
    }
    const stale = await h.call(
      createRequest(RequestCode.AckMessage, {
        consumerGroup: 'g',
        topic: 'BadSem',
        queueId: '0',
        offset: '42',
        extraInfo: '42 1700000000000 30000 0 0 broker-a 0 42',
      }),
    );
    assert.equal(stale.code, ResponseCode.NoMessage, 'an unknown lease is NO_MESSAGE');
  });

  it('answers malformed transaction, lock, stats and reset requests with an error code', async () => {
    const cases = [
      createRequest(RequestCode.EndTransaction, {
        producerGroup: 'p',
        tranStateTableOffset: '0',
        commitLogOffset: '0',
        commitOrRollback: '5',
      }),
      createRequest(RequestCode.EndTransaction, {
        producerGroup: 'p',
        tranStateTableOffset: '0',
        commitLogOffset: '999999999',
        commitOrRollback: '8',
      }),
      createRequest(RequestCode.LockBatchMq, {}, Buffer.from('not json')),
      createRequest(RequestCode.UnlockBatchMq, {}),
      createRequest(RequestCode.GetConsumeStats, {}),
      createRequest(RequestCode.InvokeBrokerToResetOffset, { topic: 'NoSuchTopic', group: 'g', timestamp: '0' }),
    ];
    for (const request of cases) {
      const response = await h.call(request);
      assert.notEqual(response.code, ResponseCode.Success, `code ${request.code} ${JSON.stringify(request.extFields)}`);
    }
    const badDelay = await h.call(sendV2Request('BadSem', Buffer.from('x'), { properties: { DELAY: 'soon' } }));
    assert.equal(badDelay.code, ResponseCode.MessageIllegal);
    const badTimer = await h.call(
      sendV2Request('BadSem', Buffer.from('x'), { properties: { TIMER_DELIVER_MS: 'later' } }),
    );
    assert.equal(badTimer.code, ResponseCode.MessageIllegal);
    for (const systemTopic of ['SCHEDULE_TOPIC_XXXX', 'rmq_sys_wheel_timer', 'RMQ_SYS_TRANS_HALF_TOPIC']) {
      const direct = await h.call(sendV2Request(systemTopic, Buffer.from('x')));
      assert.equal(direct.code, ResponseCode.NoPermission, `${systemTopic} is the broker's own`);
    }
    const ok = await h.call(sendV2Request('BadSem', Buffer.from('still fine'), { queueId: 0 }));
    assert.equal(ok.code, ResponseCode.Success, remarkOf(ok));
  });
});
