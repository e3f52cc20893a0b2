import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PullSysFlag } from '../../../src/engine/broker/pull-message-processor.js';
import { decodeRecords } from '../../../src/engine/common/message-record.js';
import { ResponseCode } from '../../../src/engine/remoting/codes.js';
import { eventually } from '../../helpers/eventually.js';
import { type BrokerHarness, pullRequest, remarkOf, sendV2Request, startHarness } from './broker-harness.js';

const SUSPEND = PullSysFlag.Suspend | PullSysFlag.Subscription;

describe('broker long polling', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await startHarness();
    // Create the topic with one message so that pulls at offset 1 wait at the end of the queue.
    for (const topic of ['Held', 'HeldTimeout', 'HeldTag', 'HeldShutdown']) {
      const sent = await h.call(sendV2Request(topic, Buffer.from('first'), { queueId: 0, tags: 'Old' }));
      assert.equal(sent.code, ResponseCode.Success, remarkOf(sent));
    }
  });
  after(async () => {
    await h?.close();
  });

  it('answers a held pull soon after a message arrives', async () => {
    const pulled = h.call(
      pullRequest('Held', 0, { queueOffset: 1, sysFlag: SUSPEND, suspendTimeoutMillis: 10_000 }),
      15_000,
    );
    await eventually(() => h.broker.heldPullCount === 1);
    const sentAtMs = Date.now();
    const sent = await h.call(sendV2Request('Held', Buffer.from('wake up'), { queueId: 0 }));
    assert.equal(sent.code, ResponseCode.Success, remarkOf(sent));
    const response = await pulled;
    const latencyMs = Date.now() - sentAtMs;
    assert.equal(response.code, ResponseCode.Success, remarkOf(response));
    assert.deepEqual(
      decodeRecords(response.body ?? Buffer.alloc(0)).map((m) => m.body.toString()),
      ['wake up'],
    );
    assert.ok(latencyMs < 1000, `held pull answered ${latencyMs} ms after the send`);
  });

  it('answers PULL_NOT_FOUND when the suspend time ends without a message', async () => {
    const startedMs = Date.now();
    const response = await h.call(
      pullRequest('HeldTimeout', 0, { queueOffset: 1, sysFlag: SUSPEND, suspendTimeoutMillis: 300 }),
    );
    const waitedMs = Date.now() - startedMs;
    assert.equal(response.code, ResponseCode.PullNotFound);
    assert.equal(response.extFields['nextBeginOffset'], '1');
    assert.ok(waitedMs >= 250 && waitedMs < 3000, `waited ${waitedMs} ms`);
    assert.equal(h.broker.heldPullCount, 0);
  });

  it('keeps holding a pull while only messages with other tags arrive', async () => {
    const pulled = h.call(
      pullRequest('HeldTag', 0, {
        queueOffset: 1,
        sysFlag: SUSPEND,
        suspendTimeoutMillis: 10_000,
        subscription: 'Wanted',
      }),
      15_000,
    );
    await eventually(() => h.broker.heldPullCount === 1);
    await h.call(sendV2Request('HeldTag', Buffer.from('other'), { queueId: 0, tags: 'Other' }));
    await h.call(sendV2Request('HeldTag', Buffer.from('wanted'), { queueId: 0, tags: 'Wanted' }));
    const response = await pulled;
    assert.equal(response.code, ResponseCode.Success, remarkOf(response));
    assert.deepEqual(
      decodeRecords(response.body ?? Buffer.alloc(0)).map((m) => m.body.toString()),
      ['wanted'],
    );
  });

  it('does not hold a pull that lacks the suspend flag', async () => {
    const response = await h.call(pullRequest('Held', 0, { queueOffset: 50, sysFlag: PullSysFlag.Subscription }));
    assert.equal(response.code, ResponseCode.PullOffsetMoved);
    const atEnd = await h.call(pullRequest('HeldTimeout', 0, { queueOffset: 1 }));
    assert.equal(atEnd.code, ResponseCode.PullNotFound);
  });

  it('answers every held pull when the broker shuts down', async () => {
    const pulled = h.call(
      pullRequest('HeldShutdown', 0, { queueOffset: 1, sysFlag: SUSPEND, suspendTimeoutMillis: 20_000 }),
      25_000,
    );
    await eventually(() => h.broker.heldPullCount === 1);
    const startedMs = Date.now();
    await h.restart();
    // The held pull is answered before the broker closes its connections.
    const response = await pulled;
    assert.equal(response.code, ResponseCode.PullNotFound);
    assert.ok(Date.now() - startedMs < 5000);
  });
});

describe('broker long polling limits', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await startHarness({ maxHeldPulls: 1 });
    await h.call(sendV2Request('Limited', Buffer.from('first'), { queueId: 0 }));
  });
  after(async () => {
    await h?.close();
  });

  it('answers a pull at once when maxHeldPulls pulls are already held', async () => {
    const held = h.call(
      pullRequest('Limited', 0, { queueOffset: 1, sysFlag: SUSPEND, suspendTimeoutMillis: 10_000 }),
      15_000,
    );
    await eventually(() => h.broker.heldPullCount === 1);
    const startedMs = Date.now();
    const second = await h.call(
      pullRequest('Limited', 0, { queueOffset: 1, sysFlag: SUSPEND, suspendTimeoutMillis: 10_000 }),
    );
    assert.equal(second.code, ResponseCode.PullNotFound);
    assert.ok(Date.now() - startedMs < 1000);
    await h.call(sendV2Request('Limited', Buffer.from('release'), { queueId: 0 }));
    assert.equal((await held).code, ResponseCode.Success);
  });
});
