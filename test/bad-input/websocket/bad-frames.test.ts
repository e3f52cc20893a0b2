/**
 * Bad input on the WebSocket API: each gets a clear error frame (or a close with the documented
 * code), the server keeps serving, and no message is lost.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../../helpers/eventually.js';
import { startWsHarness, type WsHarness, type WsTestClient } from '../../integration/websocket/ws-harness.js';

const TOKEN = 's3cret-token';
const MAX_PAYLOAD_BYTES = 64 * 1024;

describe('WebSocket bad input', () => {
  let harness: WsHarness;
  const connect = (): Promise<WsTestClient> => harness.connect({ hello: { token: TOKEN } });

  before(async () => {
    harness = await startWsHarness({
      maxPayloadBytes: MAX_PAYLOAD_BYTES,
      tokens: [TOKEN],
      users: [{ username: 'alice', password: 'wonderland' }],
      maxProtocolErrors: 5,
    });
  });
  after(async () => {
    await harness.close();
  });

  /** The server is fine: a fresh connection still produces and receives. */
  async function assertServing(topic: string): Promise<void> {
    const client = await connect();
    await client.request({ type: 'produce', topic, body: 'create' });
    await client.request({ type: 'subscribe', topic, credit: 1 });
    const produced = await client.request({ type: 'produce', topic, body: 'still serving' });
    assert.equal(produced.type, 'produced');
    const message = await client.waitFor((frame) => frame.type === 'message');
    assert.equal(message['body'], 'still serving');
    await client.end();
  }

  it('answers invalid JSON and non-object JSON with RB_WS_BAD_JSON and keeps the connection', async () => {
    const client = await connect();
    client.send('{"type": "ping"');
    client.send('[1, 2, 3]');
    client.send('null');
    await eventually(() => client.errors().length === 3);
    assert.ok(client.errors().every((error) => error['code'] === 'RB_WS_BAD_JSON'));
    assert.match(String(client.errors()[0]?.['message']), /not valid JSON/);
    const pong = await client.request({ type: 'ping' });
    assert.equal(pong.type, 'pong');
    await client.end();
  });

  it('refuses unknown types, unknown fields and missing or ill-typed fields, naming the problem', async () => {
    const client = await connect();
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ type: 'publish', topic: 'T' }, 'RB_WS_UNKNOWN_TYPE', /unknown frame type "publish"/],
      [{ type: 'produce', body: 'x' }, 'RB_WS_BAD_REQUEST', /produce.topic is required/],
      [{ type: 'produce', topic: 'WsBad', body: 'x', bodyBase64: 'eA==' }, 'RB_WS_BAD_REQUEST', /exactly one of body/],
      [{ type: 'produce', topic: 'WsBad', bodyBase64: '@@@' }, 'RB_WS_BAD_REQUEST', /not valid base64/],
      [{ type: 'produce', topic: 'WsBad', body: 'x', tags: 'a' }, 'RB_WS_BAD_REQUEST', /unknown field "tags"/],
      [{ type: 'produce', topic: 'WsBad', body: 'x', keys: 'k' }, 'RB_WS_BAD_REQUEST', /keys must be an array/],
      [{ type: 'produce', topic: 'WsBad', body: 'x', properties: { n: 1 } }, 'RB_WS_BAD_REQUEST', /string value/],
      [{ type: 'produce', topic: 'WsBad', body: 'x', properties: { KEYS: 'k' } }, 'RB_WS_BAD_REQUEST', /reserved/],
      [{ type: 'produce', topic: 'WsBad', body: 'x', properties: { 'ws.empty': '1' } }, 'RB_WS_BAD_REQUEST', /ws\./],
      [{ type: 'produce', topic: 'bad topic!', body: 'x' }, 'RB_WS_TOPIC_INVALID', /./],
      [{ type: 'produce', topic: 'WsBad', body: 'x', delayMs: 5, deliverAt: 5 }, 'RB_WS_BAD_REQUEST', /not both/],
      [{ type: 'produce', topic: 'WsBad', body: 'x', delayMs: -1 }, 'RB_WS_BAD_REQUEST', /delayMs must be/],
      [{ type: 'subscribe', topic: 'WsBad', from: 'middle' }, 'RB_WS_BAD_REQUEST', /from must be one of/],
      [{ type: 'subscribe', topic: 'WsBad', from: 'timestamp' }, 'RB_WS_BAD_REQUEST', /timestamp goes with/],
      [{ type: 'subscribe', topic: 'WsBad', tag: 'a ||' }, 'RB_WS_SUBSCRIPTION_INVALID', /./],
      [{ type: 'subscribe', topic: 'WsBad', group: 'WS_PRIVATE_x' }, 'RB_WS_BAD_REQUEST', /reserved/],
      [{ type: 'subscribe', topic: 'WsBad', group: 'no spaces' }, 'RB_WS_BAD_REQUEST', /group must be/],
      [{ type: 'unsubscribe', subscriptionId: 'nope' }, 'RB_WS_UNKNOWN_SUBSCRIPTION', /no subscription nope/],
      [{ type: 'hello', token: TOKEN }, 'RB_WS_ALREADY_AUTHENTICATED', /already/],
    ];
    for (const [frame, code, message] of cases) {
      const error = await client.request(frame);
      assert.equal(error.type, 'error', JSON.stringify(frame));
      assert.equal(error['code'], code, `${JSON.stringify(frame)}: ${String(error['message'])}`);
      assert.match(String(error['message']), message);
    }
    // Frames without a requestId still get an error, just without one.
    client.send({ type: 'subscribe', topic: 'WsBad' });
    await client.waitFor((frame) => frame.type === 'error' && frame['requestId'] === undefined);
    assert.equal(client.closeCode, undefined, 'validation errors do not close the connection');
    await client.end();
  });

  it('refuses malformed binary frames with RB_WS_BAD_FRAME', async () => {
    const client = await connect();
    client.send(Buffer.from([0, 0]));
    client.send(Buffer.from([0, 0, 0, 200, 1, 2, 3]));
    const header = Buffer.from('{"type":"ping"}');
    client.send(Buffer.concat([Buffer.from([0, 0, 0, header.length]), header]));
    await eventually(() => client.errors().length === 3);
    assert.deepEqual(
      client.errors().map((error) => error['code']),
      ['RB_WS_BAD_FRAME', 'RB_WS_BAD_FRAME', 'RB_WS_BAD_FRAME'],
    );
    await client.end();
  });

  it('closes with 1002 after more than maxProtocolErrors malformed frames', async () => {
    const client = await connect();
    for (let i = 0; i < 6; i++) client.send('not json');
    assert.equal(await client.closed(), 1002);
    await assertServing('WsAfter1002');
  });

  it('closes an oversize frame with 1009 and loses nothing already produced', async () => {
    const client = await connect();
    await client.request({ type: 'produce', topic: 'WsOversize', body: 'create' });
    const kept = await client.request({ type: 'produce', topic: 'WsOversize', tag: 'keep', body: 'kept' });
    assert.equal(kept.type, 'produced');
    client.send({ type: 'produce', requestId: 'big', topic: 'WsOversize', body: 'x'.repeat(MAX_PAYLOAD_BYTES + 1) });
    assert.equal(await client.closed(), 1009);
    const reader = await connect();
    await reader.request({ type: 'subscribe', topic: 'WsOversize', tag: 'keep', from: 'first', credit: 10 });
    const message = await reader.waitFor((frame) => frame.type === 'message');
    assert.equal(message['body'], 'kept');
    await reader.end();
  });

  it('closes with 1008 on requests before hello and on wrong credentials, and accepts good ones', async () => {
    const early = await harness.connect({ hello: false });
    const refused = await early.request({ type: 'subscribe', topic: 'WsAuth' });
    assert.equal(refused['code'], 'RB_WS_NOT_AUTHENTICATED');
    assert.equal(await early.closed(), 1008);

    for (const hello of [
      {},
      { token: 'wrong' },
      { username: 'alice', password: 'nope' },
      { username: 'bob', password: 'x' },
    ]) {
      const client = await harness.connect({ hello: false });
      const answer = await client.request({ type: 'hello', ...hello });
      assert.equal(answer['code'], 'RB_WS_AUTH_FAILED', JSON.stringify(hello));
      assert.equal(await client.closed(), 1008);
    }
    const user = await harness.connect({ hello: false });
    const welcome = await user.request({ type: 'hello', username: 'alice', password: 'wonderland' });
    assert.equal(welcome.type, 'welcome');
    await user.end();
  });

  it('answers acks and nacks for unknown message ids with RB_WS_UNKNOWN_MESSAGE', async () => {
    const client = await connect();
    for (const messageId of ['nope', 's1#1', '#', 'x'.repeat(128)]) {
      for (const type of ['ack', 'nack']) {
        const answer = await client.request({ type, messageId });
        assert.equal(answer['code'], 'RB_WS_UNKNOWN_MESSAGE', `${type} ${messageId}`);
        assert.equal(answer['messageId'], messageId);
      }
    }
    const tooLong = await client.request({ type: 'ack', messageId: 'x'.repeat(129) });
    assert.equal(tooLong['code'], 'RB_WS_BAD_REQUEST');
    await client.end();
  });

  it('refuses credit abuse with RB_WS_CREDIT_INVALID, leaving credit unchanged and losing nothing', async () => {
    const client = await connect();
    await client.request({ type: 'produce', topic: 'WsCreditAbuse', body: 'create' });
    const huge = await client.request({ type: 'subscribe', topic: 'WsCreditAbuse', credit: 1e12 });
    assert.equal(huge['code'], 'RB_WS_CREDIT_INVALID');
    const subscribed = await client.request({
      type: 'subscribe',
      subscriptionId: 'abuse',
      topic: 'WsCreditAbuse',
      group: 'ws_credit_abuse',
      credit: 1,
    });
    assert.equal(subscribed.type, 'subscribed');
    for (const credit of [-1, 1.5, '5', null, 1e12, Number.MAX_SAFE_INTEGER, 10_000]) {
      const answer = await client.request({ type: 'credit', subscriptionId: 'abuse', credit });
      assert.equal(answer['code'], 'RB_WS_CREDIT_INVALID', `credit ${String(credit)}`);
    }
    const unknown = await client.request({ type: 'credit', subscriptionId: 'other', credit: 1 });
    assert.equal(unknown['code'], 'RB_WS_UNKNOWN_SUBSCRIPTION');

    const bodies = ['a-1', 'a-2', 'a-3'];
    for (const body of bodies) await client.request({ type: 'produce', topic: 'WsCreditAbuse', body });
    await eventually(() => client.messages().length === 1);
    const credited = await client.request({ type: 'credit', subscriptionId: 'abuse', credit: 2 });
    assert.equal(credited['credit'], 2, 'the refused grants changed nothing');
    await eventually(() => client.messages().length === 3);
    assert.deepEqual(
      client
        .messages()
        .map((m) => m['body'])
        .sort(),
      bodies,
    );
    await client.end();
    await assertServing('WsAfterAbuse');
  });
});
