/**
 * Consumer groups, credit-based flow control and settlement over the WebSocket API: shared groups
 * split work, private groups see everything, credit bounds what is sent, and nack or a closed
 * connection hands unsettled messages back to the group.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ReceivedMessage, SimpleConsumer } from '../../../src/engine/client/index.js';
import { eventually } from '../../helpers/eventually.js';
import { type Frame, startWsHarness, type WsHarness, type WsTestClient } from './ws-harness.js';

async function produceAll(client: WsTestClient, topic: string, tag: string, bodies: readonly string[]): Promise<void> {
  for (const body of bodies) {
    const answer = await client.request({ type: 'produce', topic, tag, body });
    assert.equal(answer.type, 'produced', JSON.stringify(answer));
  }
}

function bodiesOf(frames: readonly Frame[]): string[] {
  return frames.map((frame) => String(frame['body'])).sort();
}

function consumerGroupsOf(harness: WsHarness): string[] {
  // Test-only look at the broker's registered consumer groups.
  return (harness.cluster.broker as unknown as { consumers: { groupNames(): string[] } }).consumers.groupNames();
}

describe('WebSocket groups, credit and settlement', () => {
  let harness: WsHarness;
  let producer: WsTestClient;
  before(async () => {
    harness = await startWsHarness();
    producer = await harness.connect();
  });
  after(async () => {
    await harness.close();
  });

  it('splits a shared group between two connections, each message to exactly one', async () => {
    await produceAll(producer, 'WsShared', 'warm', ['create']);
    const a = await harness.connect();
    const b = await harness.connect();
    await a.request({ type: 'subscribe', topic: 'WsShared', tag: 'job', group: 'ws_shared', credit: 10 });
    await b.request({ type: 'subscribe', topic: 'WsShared', tag: 'job', group: 'ws_shared', credit: 10 });
    const bodies = Array.from({ length: 20 }, (_, i) => `job-${String(i).padStart(2, '0')}`);
    await produceAll(producer, 'WsShared', 'job', bodies);
    await eventually(() => a.messages().length + b.messages().length === 20, { timeoutMs: 10_000 });
    // Credit 10 each: both had to take a share.
    assert.equal(a.messages().length, 10);
    assert.equal(b.messages().length, 10);
    assert.deepEqual(bodiesOf([...a.messages(), ...b.messages()]), bodies);
    for (const client of [a, b]) {
      for (const message of client.messages()) client.send({ type: 'ack', messageId: message['messageId'] });
    }
    await a.end();
    await b.end();
  });

  it('never sends more messages than the credit granted, leaving the rest to the group', async () => {
    await produceAll(producer, 'WsCredit', 'warm', ['create']);
    const client = await harness.connect();
    const subscribed = await client.request({
      type: 'subscribe',
      subscriptionId: 'credit-sub',
      topic: 'WsCredit',
      tag: 'c',
      group: 'ws_credit',
      credit: 3,
    });
    assert.equal(subscribed.type, 'subscribed');
    assert.equal(subscribed['subscriptionId'], 'credit-sub');
    const bodies = Array.from({ length: 10 }, (_, i) => `c-${i}`);
    await produceAll(producer, 'WsCredit', 'c', bodies);
    await eventually(() => client.messages().length === 3, { timeoutMs: 10_000 });
    for (const message of client.messages()) client.send({ type: 'ack', messageId: message['messageId'] });

    // The other 7 were never leased to the WebSocket subscription: another member gets them.
    const other = new SimpleConsumer({ group: 'ws_credit', ...harness.engine(), awaitDurationMs: 200 });
    other.subscribe('WsCredit', 'c');
    await other.start();
    const rest: ReceivedMessage[] = [];
    await eventually(
      async () => {
        rest.push(...(await other.receive(32)));
        return rest.length >= 7;
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    for (const message of rest) await other.ack(message);
    await other.shutdown();
    assert.equal(rest.length, 7);
    assert.deepEqual([...bodiesOf(client.messages()), ...rest.map((m) => m.body.toString())].sort(), bodies.sort());
    assert.equal(client.messages().length, 3, 'acks do not renew credit');

    const credited = await client.request({ type: 'credit', subscriptionId: 'credit-sub', credit: 2 });
    assert.equal(credited.type, 'credited');
    assert.equal(credited['credit'], 2);
    await produceAll(producer, 'WsCredit', 'c', ['c-10', 'c-11', 'c-12']);
    await eventually(() => client.messages().length === 5, { timeoutMs: 10_000 });
    await client.request({ type: 'unsubscribe', subscriptionId: 'credit-sub' });
    assert.equal(client.messages().length, 5);
    await client.end();
  });

  it('redelivers a nacked message, at once or after its delay, and forgets an acked one', async () => {
    await produceAll(producer, 'WsNack', 'warm', ['create']);
    const client = await harness.connect();
    await client.request({ type: 'subscribe', topic: 'WsNack', tag: 'n', group: 'ws_nack', credit: 10 });
    await produceAll(producer, 'WsNack', 'n', ['again']);
    const first = await client.waitFor((frame) => frame.type === 'message');
    assert.equal(first['redelivered'], false);
    const nacked = await client.request({ type: 'nack', messageId: first['messageId'] });
    assert.equal(nacked.type, 'nacked');
    const second = await client.waitFor((frame) => frame.type === 'message' && frame !== first, 10_000);
    assert.equal(second['body'], 'again');
    assert.equal(second['redelivered'], true);
    assert.ok(Number(second['reconsumeTimes']) >= 1);
    assert.notEqual(second['messageId'], first['messageId']);

    const delayedAt = Date.now();
    await client.request({ type: 'nack', messageId: second['messageId'], delayMs: 1000 });
    const third = await client.waitFor(
      (frame) => frame.type === 'message' && frame !== first && frame !== second,
      10_000,
    );
    assert.ok(Date.now() - delayedAt >= 900, 'not before the nack delay');
    assert.equal(third['body'], 'again');
    const acked = await client.request({ type: 'ack', messageId: third['messageId'] });
    assert.equal(acked.type, 'acked');
    const again = await client.request({ type: 'ack', messageId: third['messageId'] });
    assert.equal(again.type, 'error');
    assert.equal(again['code'], 'RB_WS_UNKNOWN_MESSAGE');
    await client.end();
  });

  it('hands unacked messages back to the group when a connection closes, keeping acked ones acked', async () => {
    await produceAll(producer, 'WsClose', 'warm', ['create']);
    for (const how of ['close', 'terminate'] as const) {
      const group = `ws_close_${how}`;
      const first = await harness.connect();
      await first.request({ type: 'subscribe', topic: 'WsClose', tag: how, group, credit: 10 });
      await produceAll(producer, 'WsClose', how, [`${how}-1`, `${how}-2`, `${how}-3`]);
      await eventually(() => first.messages().length === 3, { timeoutMs: 10_000 });
      const acked = first.messages()[0] as Frame;
      const answer = await first.request({ type: 'ack', messageId: acked['messageId'] });
      assert.equal(answer.type, 'acked');
      if (how === 'close') await first.end();
      else first.ws.terminate();

      // Well before the 30 s lease would run out: the close handed the two unacked ones back.
      const second = await harness.connect();
      await second.request({ type: 'subscribe', topic: 'WsClose', tag: how, group, credit: 10 });
      await eventually(() => second.messages().length === 2, { timeoutMs: 10_000 });
      assert.ok(second.messages().every((message) => message['redelivered'] === true));
      const expected = bodiesOf(first.messages()).filter((body) => body !== acked['body']);
      assert.deepEqual(bodiesOf(second.messages()), expected);
      await produceAll(producer, 'WsClose', how, [`${how}-marker`]);
      await eventually(() => second.messages().length === 3, { timeoutMs: 10_000 });
      assert.ok(
        !second.messages().some((message) => message['body'] === acked['body']),
        'the acked message stays acked',
      );
      await second.end();
    }
  });

  it('gives each connection without a group a private group that sees every message and goes away on close', async () => {
    await produceAll(producer, 'WsPrivate', 'warm', ['create']);
    const a = await harness.connect();
    const b = await harness.connect();
    await a.request({ type: 'subscribe', topic: 'WsPrivate', tag: 'p', credit: 10 });
    const subscribed = await b.request({ type: 'subscribe', topic: 'WsPrivate', tag: 'p', credit: 10 });
    assert.equal(subscribed['group'], undefined, 'a private group is not named to the client');
    // `from: last` is the default: the earlier message is not delivered.
    await produceAll(producer, 'WsPrivate', 'p', ['p-1', 'p-2', 'p-3']);
    await eventually(() => a.messages().length === 3 && b.messages().length === 3, { timeoutMs: 10_000 });
    assert.deepEqual(bodiesOf(a.messages()), ['p-1', 'p-2', 'p-3']);
    assert.deepEqual(bodiesOf(b.messages()), ['p-1', 'p-2', 'p-3']);
    const privateGroups = (): string[] => consumerGroupsOf(harness).filter((name) => name.startsWith('WS_PRIVATE_'));
    await eventually(() => privateGroups().length === 2);
    await a.end();
    await b.end();
    await eventually(() => privateGroups().length === 0, { timeoutMs: 10_000 });
  });

  it('starts a private subscription from the first message or from a timestamp when asked', async () => {
    await produceAll(producer, 'WsFrom', 't', ['old-1', 'old-2']);
    const middle = Date.now();
    await eventually(() => Date.now() > middle + 5, { intervalMs: 5 });
    await produceAll(producer, 'WsFrom', 't', ['new-1']);
    const fromFirst = await harness.connect();
    await fromFirst.request({ type: 'subscribe', topic: 'WsFrom', tag: 't', from: 'first', credit: 10 });
    const fromTime = await harness.connect();
    await fromTime.request({
      type: 'subscribe',
      topic: 'WsFrom',
      tag: 't',
      from: 'timestamp',
      timestamp: middle + 3,
      credit: 10,
    });
    await eventually(() => fromFirst.messages().length === 3 && fromTime.messages().length === 1, {
      timeoutMs: 10_000,
    });
    assert.deepEqual(bodiesOf(fromFirst.messages()), ['new-1', 'old-1', 'old-2']);
    assert.deepEqual(bodiesOf(fromTime.messages()), ['new-1']);
    await fromFirst.end();
    await fromTime.end();
  });
});
