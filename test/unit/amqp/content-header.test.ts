import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PayloadWriter } from '../../../src/adapters/amqp/codec.js';
import {
  decodeContentHeader,
  writeContentHeaderPayload,
  type BasicProperties,
} from '../../../src/adapters/amqp/content-header.js';
import { AmqpEncodeError, AmqpProtocolError } from '../../../src/adapters/amqp/errors.js';
import { encodeContentHeaderFrame } from '../../../src/adapters/amqp/frame-writer.js';
import { ReplyCode } from '../../../src/adapters/amqp/reply-codes.js';
import {
  amqplibDefs,
  amqplibFrame,
  defined,
  fromAmqplibValue,
  sampleProperties,
  toAmqplibValue,
} from './amqplib-reference.js';

function headerPayload(bodySizeBytes: number, properties: BasicProperties): Buffer {
  const writer = new PayloadWriter();
  writeContentHeaderPayload(writer, bodySizeBytes, properties);
  return Buffer.from(writer.buf.subarray(0, writer.offsetBytes));
}

/** Each property alone, then all of them, then none. */
function propertySets(): BasicProperties[] {
  const all = sampleProperties();
  const singles = Object.entries(all).map(([key, value]) => ({ [key]: value }) as BasicProperties);
  return [...singles, all, {}];
}

function assertErrorCode(fn: () => unknown, replyCode: number): void {
  assert.throws(fn, (err: unknown) => err instanceof AmqpProtocolError && err.replyCode === replyCode);
}

describe('AMQP basic content header', () => {
  it('round-trips each of the 14 properties alone and all together', () => {
    for (const properties of propertySets()) {
      const decoded = decodeContentHeader(headerPayload(1024, properties));
      assert.equal(decoded.classId, 60);
      assert.equal(decoded.bodySizeBytes, 1024);
      assert.deepEqual(defined(decoded.properties), properties);
    }
  });

  it('sets the property flags from bit 15 down in spec order', () => {
    const payload = headerPayload(0, { contentType: 'a', clusterId: 'b' });
    assert.equal(payload.readUInt16BE(12), (1 << 15) | (1 << 2));
    assert.equal(headerPayload(0, {}).readUInt16BE(12), 0);
  });

  it('encodes headers that amqplib decodes to the same properties', () => {
    for (const properties of propertySets()) {
      const frame = encodeContentHeaderFrame(9, 2 ** 40, properties);
      const parsed = amqplibFrame.parseFrame(frame, 0);
      assert.ok(parsed !== false);
      const decoded = amqplibFrame.decodeFrame(parsed);
      assert.equal(decoded.id, 60);
      assert.equal(decoded.channel, 9);
      assert.equal(decoded.size, 2 ** 40);
      assert.deepEqual(defined(fromAmqplibValue(decoded.fields ?? {}) as object), properties);
    }
  });

  it('decodes headers amqplib encodes to the same properties', () => {
    for (const properties of propertySets()) {
      const fields = Object.fromEntries(Object.entries(properties).map(([key, value]) => [key, toAmqplibValue(value)]));
      const frame = amqplibDefs.encodeProperties(60, 1, 77, fields);
      const decoded = decodeContentHeader(frame.subarray(7, -1));
      assert.equal(decoded.bodySizeBytes, 77);
      assert.deepEqual(defined(decoded.properties), properties);
    }
  });

  it('answers truncated or trailing header bytes with SYNTAX_ERROR', () => {
    const payload = headerPayload(5, sampleProperties());
    for (let length = 0; length < payload.length; length++) {
      assertErrorCode(() => decodeContentHeader(payload.subarray(0, length)), ReplyCode.SyntaxError);
    }
    assertErrorCode(() => decodeContentHeader(Buffer.concat([payload, Buffer.from([1])])), ReplyCode.SyntaxError);
  });

  it('refuses property flags basic does not define', () => {
    const payload = headerPayload(5, {});
    payload.writeUInt16BE(1 << 1, 12);
    assertErrorCode(() => decodeContentHeader(payload), ReplyCode.SyntaxError);
    const continued = Buffer.concat([headerPayload(5, {}), Buffer.from([0x00, 0x80])]);
    continued.writeUInt16BE(1, 12);
    assertErrorCode(() => decodeContentHeader(continued), ReplyCode.SyntaxError);
    // A continuation word that names nothing is harmless.
    const empty = Buffer.concat([headerPayload(5, {}), Buffer.from([0, 0])]);
    empty.writeUInt16BE(1, 12);
    assert.equal(decodeContentHeader(empty).bodySizeBytes, 5);
  });

  it('answers a content header of a class other than basic with UNEXPECTED_FRAME', () => {
    const payload = headerPayload(5, {});
    payload.writeUInt16BE(50, 0);
    assertErrorCode(() => decodeContentHeader(payload), ReplyCode.UnexpectedFrame);
  });

  it('refuses to encode a property short string over 255 bytes', () => {
    assert.throws(() => headerPayload(0, { messageId: 'm'.repeat(256) }), /messageId is 256 bytes/);
    assert.throws(() => headerPayload(0, { replyTo: 'r'.repeat(300) }), AmqpEncodeError);
  });
});
