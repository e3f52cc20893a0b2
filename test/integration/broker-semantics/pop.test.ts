import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeRecords } from '../../../src/engine/common/message-record.js';
import { ResponseCode } from '../../../src/engine/remoting/codes.js';
import { eventually } from '../../helpers/eventually.js';
import {
  type BrokerHarness,
  createTopicRequest,
  pullRequest,
  remarkOf,
  sendV2Request,
  startHarness,
} from '../broker/broker-harness.js';
import {
  type PopOptions,
  type Popped,
  ackRequest,
  changeInvisibleRequest,
  popRequest,
  poppedOf,
  renewed,
} from './semantics-requests.js';

const NOTHING = new Set<number>([ResponseCode.PullNotFound, ResponseCode.PollingTimeout, ResponseCode.NoMessage]);

describe('pop: per-message leases and acks', () => {
  let h: BrokerHarness;
  const config = { maxReconsumeTimes: 2 };
  before(async () => {
    h = await startHarness(config);
    for (const topic of ['PopShare', 'PopLease', 'PopNack', 'PopPoll', 'PopDlq', 'PopRestart']) {
      const created = await h.call(createTopicRequest(topic, 2));
      assert.equal(created.code, ResponseCode.Success, remarkOf(created));
    }
  });
  after(async () => {
    await h?.close();
  });

  async function send(topic: string, count: number, prefix: string): Promise<void> {
    for (let i = 0; i < count; i++) {
      const sent = await h.call(
        sendV2Request(topic, Buffer.from(`${prefix}-${i}`), { tags: i % 2 === 0 ? 'even' : 'odd' }),
      );
      assert.equal(sent.code, ResponseCode.Success, remarkOf(sent));
    }
  }

  async function pop(group: string, topic: string, options: PopOptions = {}): Promise<Popped[]> {
    const response = await h.call(popRequest(group, topic, options), 10_000);
    if (NOTHING.has(response.code)) return [];
    assert.equal(response.code, ResponseCode.Success, remarkOf(response));
    return poppedOf(response);
  }

  async function ack(group: string, popped: Popped): Promise<number> {
    return (await h.call(ackRequest(group, popped))).code;
  }

  it('leases each message to one member of the group, and an ack removes it for good', async () => {
    await send('PopShare', 10, 'share');
    const first = await pop('gShare', 'PopShare', { maxMsgNums: 4 });
    const second = await pop('gShare', 'PopShare', { maxMsgNums: 32 });
    assert.equal(first.length, 4);
    assert.equal(second.length, 6);
    const bodies = [...first, ...second].map((p) => p.message.body.toString()).sort();
    assert.deepEqual(bodies, [...Array(10).keys()].map((i) => `share-${i}`).sort(), 'no message leased twice');
    assert.deepEqual(await pop('gShare', 'PopShare'), [], 'everything is leased');
    for (const popped of [...first, ...second]) assert.equal(await ack('gShare', popped), ResponseCode.Success);
    assert.equal(await ack('gShare', first[0] as Popped), ResponseCode.NoMessage, 'a second ack finds no lease');
    const other = await pop('gOther', 'PopShare', { exp: 'even' });
    assert.equal(other.length, 5, 'another group has its own state; tags filter on the broker');
    assert.ok(other.every((p) => p.message.properties['TAGS'] === 'even'));
  });

  it('redelivers a message whose lease ran out through the pop retry topic with reconsumeTimes + 1', async () => {
    await send('PopLease', 1, 'lease');
    const [leased] = await pop('gLease', 'PopLease', { invisibleTimeMs: 300 });
    assert.ok(leased);
    const startedAt = Date.now();
    const [again] = await pop('gLease', 'PopLease', { pollTimeMs: 3000, invisibleTimeMs: 30_000 });
    assert.ok(again, 'redelivered');
    assert.ok(Date.now() - startedAt < 1500, 'within about a second of the lease end');
    assert.equal(again.message.body.toString(), 'lease-0');
    assert.equal(again.leaseTopic, '%RETRY%gLease_PopLease');
    assert.equal(again.message.reconsumeTimes, 1);
    assert.equal(again.message.properties['RETRY_TOPIC'], 'PopLease');
    assert.equal(await ack('gLease', leased), ResponseCode.NoMessage, 'the expired handle no longer acks');
    assert.equal(await ack('gLease', again), ResponseCode.Success);
  });

  it('extends a lease with changeInvisibleTime, voids the old handle, and redelivers at once on a nack', async () => {
    await send('PopNack', 1, 'nack');
    const [leased] = await pop('gNack', 'PopNack', { invisibleTimeMs: 300 });
    assert.ok(leased);
    const changed = await h.call(changeInvisibleRequest('gNack', leased, 5000));
    assert.equal(changed.code, ResponseCode.Success, remarkOf(changed));
    assert.equal(changed.extFields['invisibleTime'], '5000');
    const extended = renewed(leased, changed);
    assert.deepEqual(await pop('gNack', 'PopNack', { pollTimeMs: 700 }), [], 'still invisible past the first lease');
    assert.equal(await ack('gNack', leased), ResponseCode.NoMessage, 'the old handle is void');
    const nacked = await h.call(changeInvisibleRequest('gNack', extended, 0));
    assert.equal(nacked.code, ResponseCode.Success, remarkOf(nacked));
    const startedAt = Date.now();
    const [again] = await pop('gNack', 'PopNack', { pollTimeMs: 3000 });
    assert.ok(again && Date.now() - startedAt < 1000, 'a nack makes it visible at once');
    assert.equal(again.message.reconsumeTimes, 1);
    assert.equal(await ack('gNack', again), ResponseCode.Success);
  });

  it('long-polls a pop until a message arrives', async () => {
    const waiting = h.call(popRequest('gPoll', 'PopPoll', { pollTimeMs: 5000 }), 10_000);
    await eventually(() => assert.equal(h.broker.heldPopCount, 1));
    const startedAt = Date.now();
    await send('PopPoll', 1, 'poll');
    const response = await waiting;
    assert.equal(response.code, ResponseCode.Success, remarkOf(response));
    assert.ok(Date.now() - startedAt < 1000, 'answered on arrival, not at the poll timeout');
    assert.equal(poppedOf(response)[0]?.message.body.toString(), 'poll-0');
    const empty = await h.call(popRequest('gPoll', 'PopPoll', { pollTimeMs: 200 }));
    assert.equal(empty.code, ResponseCode.PollingTimeout, remarkOf(empty));
  });

  it('moves a message to the DLQ once it was reconsumed maxReconsumeTimes times', async () => {
    await send('PopDlq', 1, 'dlq');
    let reconsumed = -1;
    for (let attempt = 0; attempt < 3; attempt++) {
      const [leased] = await pop('gDlq', 'PopDlq', { pollTimeMs: 3000 });
      assert.ok(leased, `attempt ${attempt} is delivered`);
      reconsumed = leased.message.reconsumeTimes;
      assert.equal(reconsumed, attempt);
      const nacked = await h.call(changeInvisibleRequest('gDlq', leased, 0));
      assert.equal(nacked.code, ResponseCode.Success, remarkOf(nacked));
    }
    const dead = await eventually(async () => {
      const pulled = await h.call(pullRequest('%DLQ%gDlq', 0));
      assert.equal(pulled.code, ResponseCode.Success, remarkOf(pulled));
      return decodeRecords(pulled.body ?? Buffer.alloc(0));
    });
    assert.deepEqual(
      dead.map((m) => [m.body.toString(), m.reconsumeTimes, m.properties['RETRY_TOPIC']]),
      [['dlq-0', 3, 'PopDlq']],
    );
    assert.deepEqual(await pop('gDlq', 'PopDlq', { pollTimeMs: 300 }), [], 'not redelivered after the DLQ');
  });

  it('redelivers unacked messages after a broker restart and never an acked one', async () => {
    await send('PopRestart', 6, 'restart');
    const leased = await pop('gRestart', 'PopRestart', { invisibleTimeMs: 1000 });
    assert.equal(leased.length, 6);
    const [ackedBefore, ackedAfter, ...unacked] = leased;
    assert.ok(ackedBefore && ackedAfter);
    assert.equal(await ack('gRestart', ackedBefore), ResponseCode.Success);
    await h.restart(config);
    assert.equal(
      await ack('gRestart', ackedAfter),
      ResponseCode.Success,
      'a handle from before the restart still acks',
    );
    const redelivered: Popped[] = [];
    await eventually(
      async () => {
        redelivered.push(...(await pop('gRestart', 'PopRestart', { pollTimeMs: 500 })));
        assert.ok(redelivered.length >= unacked.length);
      },
      { timeoutMs: 5000 },
    );
    assert.deepEqual(
      redelivered.map((p) => p.message.body.toString()).sort(),
      unacked.map((p) => p.message.body.toString()).sort(),
    );
    assert.ok(redelivered.every((p) => p.message.reconsumeTimes === 1));
    for (const popped of redelivered) assert.equal(await ack('gRestart', popped), ResponseCode.Success);
    await h.restart(config);
    assert.deepEqual(await pop('gRestart', 'PopRestart', { pollTimeMs: 1500 }), [], 'nothing comes back once acked');
  });

  it('rejects an invalid tag expression with SUBSCRIPTION_PARSE_FAILED', async () => {
    const response = await h.call(popRequest('gBad', 'PopShare', { exp: 'a || || b' }));
    assert.equal(response.code, ResponseCode.SubscriptionParseFailed);
    assert.match(remarkOf(response), /empty alternative/);
  });
});
