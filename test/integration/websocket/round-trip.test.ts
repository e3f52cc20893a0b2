/**
 * Produce and subscribe over the WebSocket API against a real NameServer and broker, and interop
 * with the engine's own Producer and PushConsumer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Producer, PushConsumer, type MessageExt } from '../../../src/engine/client/index.js';
import { eventually } from '../../helpers/eventually.js';
import { binaryFrame, splitBinaryFrame, startWsHarness, type WsHarness } from './ws-harness.js';

describe('WebSocket produce and subscribe', () => {
  let harness: WsHarness;
  before(async () => {
    harness = await startWsHarness();
  });
  after(async () => {
    await harness.close();
  });

  it('answers hello with a session id and the server limits', async () => {
    const client = await harness.connect({ hello: false });
    const welcome = await client.request({ type: 'hello' });
    assert.equal(welcome.type, 'welcome');
    assert.match(String(welcome['sessionId']), /^[0-9a-f]{16}$/);
    assert.equal(welcome['server'], 'rocketbridge');
    assert.ok(typeof (welcome['limits'] as Record<string, number>)['maxPayloadBytes'] === 'number');
    const pong = await client.request({ type: 'ping' });
    assert.equal(pong.type, 'pong');
    await client.end();
  });

  it('delivers a produced message to a subscriber of its tag and not to one of another tag', async () => {
    const producer = await harness.connect();
    const warm = await producer.request({ type: 'produce', topic: 'WsRound', tag: 'warm', body: 'create' });
    assert.equal(warm.type, 'produced', JSON.stringify(warm));
    const subscriber = await harness.connect();
    const other = await harness.connect();
    const subscribed = await subscriber.request({ type: 'subscribe', topic: 'WsRound', tag: 'red', credit: 10 });
    assert.equal(subscribed.type, 'subscribed', JSON.stringify(subscribed));
    const otherSubscribed = await other.request({ type: 'subscribe', topic: 'WsRound', tag: 'blue', credit: 10 });
    assert.equal(otherSubscribed.type, 'subscribed');

    const produced = await producer.request({
      type: 'produce',
      topic: 'WsRound',
      tag: 'red',
      keys: ['order-1'],
      properties: { color: 'red', 'x-unicode': 'grüße ✓' },
      body: 'hello 🌍',
    });
    assert.equal(produced.type, 'produced', JSON.stringify(produced));
    assert.equal(typeof produced['msgId'], 'string');
    assert.equal(typeof produced['queueId'], 'number');
    assert.equal(typeof produced['queueOffset'], 'number');
    assert.equal(produced['status'], 'SEND_OK');

    const message = await subscriber.waitFor((frame) => frame.type === 'message');
    assert.equal(message['subscriptionId'], subscribed['subscriptionId']);
    assert.equal(message['msgId'], produced['msgId']);
    assert.equal(message['topic'], 'WsRound');
    assert.equal(message['tag'], 'red');
    assert.deepEqual(message['keys'], ['order-1']);
    assert.deepEqual(message['properties'], { color: 'red', 'x-unicode': 'grüße ✓' });
    assert.equal(message['body'], 'hello 🌍');
    assert.equal(message['redelivered'], false);
    assert.equal(message['queueOffset'], produced['queueOffset']);
    assert.equal(typeof message['messageId'], 'string');
    const acked = await subscriber.request({ type: 'ack', messageId: message['messageId'] });
    assert.equal(acked.type, 'acked');

    // A later blue message proves the blue subscriber is live; it never saw the red one.
    await producer.request({ type: 'produce', topic: 'WsRound', tag: 'blue', body: 'blue one' });
    const blue = await other.waitFor((frame) => frame.type === 'message');
    assert.equal(blue['body'], 'blue one');
    assert.equal(other.messages().length, 1);
    for (const client of [producer, subscriber, other]) await client.end();
  });

  it('delivers a message from the engine Producer with tag, keys, properties and a binary body intact', async () => {
    const producer = new Producer({ group: 'ws_test_producer', ...harness.engine() });
    await producer.start();
    await producer.send({ topic: 'WsFromEngine', tags: 'warm', body: Buffer.from('x') });
    const auto = await harness.connect();
    const binary = await harness.connect();
    await auto.request({ type: 'subscribe', topic: 'WsFromEngine', tag: 'bin', credit: 5 });
    await binary.request({ type: 'subscribe', topic: 'WsFromEngine', tag: 'bin', credit: 5, bodyEncoding: 'binary' });
    const body = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x41, 0xc3]);
    const sent = await producer.send({
      topic: 'WsFromEngine',
      tags: 'bin',
      keys: ['k1', 'k2'],
      properties: { source: 'engine', empty: '' },
      body,
    });

    const message = await auto.waitFor((frame) => frame.type === 'message');
    assert.equal(message['msgId'], sent.msgId);
    assert.equal(message['tag'], 'bin');
    assert.deepEqual(message['keys'], ['k1', 'k2']);
    assert.deepEqual(message['properties'], { source: 'engine', empty: '' });
    assert.equal(message['body'], undefined, 'not valid UTF-8, so not sent as text');
    assert.deepEqual(Buffer.from(String(message['bodyBase64']), 'base64'), body);

    await eventually(() => binary.binaryFrames.length === 1);
    const { header, body: raw } = splitBinaryFrame(binary.binaryFrames[0] as Buffer);
    assert.equal(header.type, 'message');
    assert.equal(header['tag'], 'bin');
    assert.deepEqual(header['keys'], ['k1', 'k2']);
    assert.deepEqual(raw, body);
    await auto.request({ type: 'ack', messageId: message['messageId'] });
    await binary.request({ type: 'ack', messageId: header['messageId'] });
    await producer.shutdown();
    await auto.end();
    await binary.end();
  });

  it('delivers WebSocket-produced messages, JSON and binary frames, to the engine PushConsumer', async () => {
    const client = await harness.connect();
    await client.request({ type: 'produce', topic: 'WsToEngine', tag: 'warm', body: 'create' });
    const received: MessageExt[] = [];
    const consumer = new PushConsumer({
      group: 'ws_test_push',
      ...harness.engine(),
      consumeFromWhere: 'LAST_OFFSET',
      rebalanceIntervalMs: 200,
    });
    consumer.subscribe('WsToEngine', 'job', (messages) => {
      received.push(...messages);
      return 'CONSUME_SUCCESS';
    });
    await consumer.start();
    // Wait until the consumer owns its queues, so LAST_OFFSET does not skip what follows.
    await eventually(
      async () => {
        const answer = await client.request({ type: 'produce', topic: 'WsToEngine', tag: 'job', body: 'probe' });
        assert.equal(answer.type, 'produced');
        return received.some((message) => message.body.toString() === 'probe');
      },
      { timeoutMs: 15_000, intervalMs: 300 },
    );

    const binaryBody = Buffer.from([0, 1, 2, 253, 254, 255]);
    client.send(
      binaryFrame(
        {
          type: 'produce',
          requestId: 'bin-1',
          topic: 'WsToEngine',
          tag: 'job',
          keys: ['bk'],
          properties: { kind: 'binary' },
        },
        binaryBody,
      ),
    );
    const binaryProduced = await client.waitFor((frame) => frame['requestId'] === 'bin-1');
    assert.equal(binaryProduced.type, 'produced', JSON.stringify(binaryProduced));
    const jsonProduced = await client.request({
      type: 'produce',
      topic: 'WsToEngine',
      tag: 'job',
      keys: ['jk'],
      properties: { kind: 'base64' },
      bodyBase64: Buffer.from('base64 body').toString('base64'),
    });
    assert.equal(jsonProduced.type, 'produced');

    await eventually(() => received.some((m) => m.msgId === jsonProduced['msgId']), { timeoutMs: 10_000 });
    await eventually(() => received.some((m) => m.msgId === binaryProduced['msgId']), { timeoutMs: 10_000 });
    const binaryMessage = received.find((m) => m.msgId === binaryProduced['msgId']) as MessageExt;
    assert.equal(binaryMessage.tags, 'job');
    assert.deepEqual(binaryMessage.keys, ['bk']);
    assert.deepEqual(binaryMessage.properties, { kind: 'binary' });
    assert.deepEqual(binaryMessage.body, binaryBody);
    const jsonMessage = received.find((m) => m.msgId === jsonProduced['msgId']) as MessageExt;
    assert.deepEqual(jsonMessage.keys, ['jk']);
    assert.equal(jsonMessage.body.toString(), 'base64 body');
    await consumer.shutdown();
    await client.end();
  });

  it('round-trips an empty body and honours delayMs', async () => {
    const client = await harness.connect();
    await client.request({ type: 'produce', topic: 'WsEmpty', body: 'create' });
    const sub = await client.request({ type: 'subscribe', topic: 'WsEmpty', credit: 5 });
    const start = Date.now();
    const produced = await client.request({ type: 'produce', topic: 'WsEmpty', body: '', delayMs: 1200 });
    assert.equal(produced.type, 'produced', JSON.stringify(produced));
    const message = await client.waitFor((frame) => frame.type === 'message', 10_000);
    assert.equal(message['subscriptionId'], sub['subscriptionId']);
    assert.equal(message['body'], '');
    assert.deepEqual(message['properties'], {});
    assert.ok(Date.now() - start >= 1000, 'delivered after the delay');
    await client.end();
  });
});
