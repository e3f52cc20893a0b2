/**
 * The WebSocket protocol validator, binary framing and the JSON <-> engine message mapping, without
 * sockets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MessageExt } from '../../../src/engine/client/index.js';
import { WsError } from '../../../src/adapters/websocket/errors.js';
import {
  bodyOfRequest,
  engineMessageOf,
  messageFrameOf,
  messageHeaderOf,
  textOf,
} from '../../../src/adapters/websocket/mapping.js';
import {
  decodeBinaryFrame,
  encodeBinaryFrame,
  parseJsonObject,
  type ProduceRequest,
  validateClientFrame,
} from '../../../src/adapters/websocket/protocol.js';
import { browserClientSource, DEMO_HTML } from '../../../src/adapters/websocket/web-assets.js';

/** What a consumer would get back for a stored engine message (the broker's part simulated). */
function storedAs(message: ReturnType<typeof engineMessageOf>['message']): MessageExt {
  const properties = { ...(message.properties ?? {}) };
  return {
    topic: message.topic,
    tags: message.tags,
    keys: [...(message.keys ?? [])],
    body: message.body,
    properties,
    allProperties: properties,
    msgId: 'ID1',
    offsetMsgId: 'OFF1',
    brokerName: 'b',
    queueId: 1,
    queueOffset: 7,
    commitLogOffset: 0,
    reconsumeTimes: 0,
    bornTimestamp: 1,
    storeTimestamp: 2,
    bornHost: { host: '127.0.0.1', port: 1 },
    storeHost: { host: '127.0.0.1', port: 2 },
    flag: 0,
    sysFlag: 0,
  };
}

function roundTrip(request: ProduceRequest, binaryBody?: Buffer): ReturnType<typeof messageFrameOf> {
  const validated = validateClientFrame({ ...request }, binaryBody !== undefined) as ProduceRequest;
  const { message } = engineMessageOf(validated, binaryBody ?? bodyOfRequest(validated));
  const { header, body } = messageHeaderOf(storedAs(message), 'sub', 'sub#1');
  return messageFrameOf(header, body, 'auto');
}

describe('WebSocket protocol and mapping', () => {
  it('round-trips topic, tag, keys, properties and a text body', () => {
    const frame = roundTrip({
      type: 'produce',
      requestId: 1,
      topic: 'Orders',
      tag: 'eu.created',
      keys: ['o-1', 'o-2'],
      properties: { a: '1', 'mqtt.qos': '1', 'with space': 'v\u00e9' },
      body: '\ufeffbom kept ✓',
    });
    assert.equal(frame.topic, 'Orders');
    assert.equal(frame.tag, 'eu.created');
    assert.deepEqual(frame.keys, ['o-1', 'o-2']);
    assert.deepEqual(frame.properties, { a: '1', 'mqtt.qos': '1', 'with space': 'v\u00e9' });
    assert.equal(frame.body, '\ufeffbom kept ✓');
  });

  it('round-trips binary bodies as base64, binary frames, and the empty body', () => {
    const bytes = Buffer.from([0xc3, 0x28, 0x00, 0xff]);
    const viaBase64 = roundTrip({ type: 'produce', requestId: 'r', topic: 'T', bodyBase64: bytes.toString('base64') });
    assert.deepEqual(Buffer.from(viaBase64.bodyBase64 ?? '', 'base64'), bytes);
    assert.equal(viaBase64.body, undefined);
    const viaFrame = roundTrip({ type: 'produce', requestId: 'r', topic: 'T' }, bytes);
    assert.deepEqual(Buffer.from(viaFrame.bodyBase64 ?? '', 'base64'), bytes);
    const empty = roundTrip({ type: 'produce', requestId: 'r', topic: 'T', body: '' });
    assert.equal(empty.body, '');
    assert.deepEqual(empty.properties, {});
  });

  it('sends text only when the bytes are valid UTF-8', () => {
    assert.equal(textOf(Buffer.from('plain')), 'plain');
    assert.equal(textOf(Buffer.from([0xed, 0xa0, 0x80])), undefined, 'a lone surrogate is not valid UTF-8');
    assert.equal(textOf(Buffer.from([0xe2, 0x82])), undefined, 'a cut sequence is not valid UTF-8');
  });

  it('refuses RocketMQ system properties and the ws. namespace as user properties', () => {
    for (const name of ['KEYS', 'UNIQ_KEY', 'TIMER_DELIVER_MS', 'ws.empty', 'ws.other']) {
      const request = validateClientFrame({
        type: 'produce',
        requestId: 1,
        topic: 'T',
        body: 'x',
        properties: { [name]: 'v' },
      });
      assert.throws(() => engineMessageOf(request as ProduceRequest, Buffer.from('x')), WsError, name);
    }
  });

  it('maps delayMs and deliverAt to send options', () => {
    const delayed = engineMessageOf(
      validateClientFrame({ type: 'produce', requestId: 1, topic: 'T', body: 'x', delayMs: 500 }) as ProduceRequest,
      Buffer.from('x'),
    );
    assert.deepEqual(delayed.options, { delayMs: 500 });
    const at = Date.now() + 1000;
    const scheduled = engineMessageOf(
      validateClientFrame({ type: 'produce', requestId: 1, topic: 'T', body: 'x', deliverAt: at }) as ProduceRequest,
      Buffer.from('x'),
    );
    assert.deepEqual(scheduled.options, { deliverAt: at });
  });

  it('encodes and decodes binary frames, refusing bad header lengths', () => {
    const frame = encodeBinaryFrame({ type: 'produce', topic: 'T' }, Buffer.from([1, 2, 3]));
    const { header, body } = decodeBinaryFrame(frame);
    assert.deepEqual(header, { type: 'produce', topic: 'T' });
    assert.deepEqual(body, Buffer.from([1, 2, 3]));
    assert.throws(() => decodeBinaryFrame(Buffer.from([0, 0, 0])), /shorter/);
    assert.throws(() => decodeBinaryFrame(Buffer.from([0, 0, 0, 0, 1])), /does not fit/);
    assert.throws(() => decodeBinaryFrame(Buffer.from([0xff, 0xff, 0xff, 0xff, 1])), /does not fit/);
    assert.throws(() => decodeBinaryFrame(Buffer.from([0, 0, 0, 1, 0x7b])), /header/);
  });

  it('validates strictly: unknown types and fields, wrong types, and shapes that do not go together', () => {
    const refused: Record<string, unknown>[] = [
      {},
      { type: 7 },
      { type: 'toString' },
      { type: '__proto__' },
      { type: 'ping', extra: 1 },
      { type: 'ack' },
      { type: 'ack', messageId: 5 },
      { type: 'credit', subscriptionId: 's', credit: -1 },
      { type: 'credit', subscriptionId: 'bad id', credit: 1 },
      { type: 'hello', token: 't', username: 'u', password: 'p' },
      { type: 'hello', username: 'u' },
      { type: 'produce', requestId: {}, topic: 'T', body: 'x' },
      { type: 'produce', requestId: 1, topic: 'T', body: 'x', tag: 'a || b' },
      { type: 'produce', requestId: 1, topic: 'T', body: 'x', tag: '' },
      { type: 'produce', requestId: 1, topic: 'T', body: 'x', keys: ['two words'] },
      { type: 'produce', requestId: 1, topic: 'T', body: 'x', properties: { 'a\u0001': 'v' } },
      { type: 'subscribe', requestId: 1, topic: 'T', offset: 3 },
      { type: 'subscribe', requestId: 1, topic: 'T', ackTimeoutMs: 10 },
      { type: 'subscribe', requestId: 1, topic: 'T', bodyEncoding: 'hex' },
    ];
    for (const frame of refused) assert.throws(() => validateClientFrame(frame), WsError, JSON.stringify(frame));
    assert.throws(() => validateClientFrame({ type: 'ping' }, true), /binary frames carry produce only/);
    assert.throws(() => parseJsonObject('[]'), /JSON object/);
    assert.deepEqual(
      validateClientFrame({ type: 'subscribe', requestId: 'x', topic: 'T', from: 'offset', offset: 0 }),
      {
        type: 'subscribe',
        requestId: 'x',
        topic: 'T',
        from: 'offset',
        offset: 0,
      },
    );
  });

  it('ships the browser client and a demo page that loads it', () => {
    assert.match(browserClientSource(), /export class RocketBridgeClient/);
    assert.match(DEMO_HTML, /from '\/client\/rocketbridge-client\.js'/);
  });
});
