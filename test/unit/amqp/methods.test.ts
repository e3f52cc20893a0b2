import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameType } from '../../../src/adapters/amqp/constants.js';
import { AmqpProtocolError } from '../../../src/adapters/amqp/errors.js';
import { FrameDecoder } from '../../../src/adapters/amqp/frame-decoder.js';
import { encodeMethodFrame } from '../../../src/adapters/amqp/frame-writer.js';
import {
  allMethods,
  decodeClientMethod,
  decodeMethod,
  methodInfo,
  methodInfoById,
  type AmqpMethod,
} from '../../../src/adapters/amqp/methods.js';
import { ReplyCode } from '../../../src/adapters/amqp/reply-codes.js';
import {
  amqplibDefs,
  amqplibFrame,
  amqplibMethodId,
  decodedForm,
  fromAmqplibFields,
  methodFields,
  sampleMethods,
  toAmqplibFields,
} from './amqplib-reference.js';

/** Frame a whole buffer with our decoder and return the single method payload in it. */
function onlyPayload(frame: Buffer): Buffer {
  const payloads: Buffer[] = [];
  const decoder = new FrameDecoder(
    {
      onProtocolHeader: () => assert.fail('no protocol header expected'),
      onFrame: (type, _channelId, payload) => {
        assert.equal(type, FrameType.Method);
        payloads.push(payload);
      },
    },
    { maxFrameBytes: 131072, expectProtocolHeader: false },
  );
  decoder.push(frame);
  assert.equal(payloads.length, 1);
  return payloads[0] as Buffer;
}

function payloadOf(method: AmqpMethod): Buffer {
  return encodeMethodFrame(1, method).subarray(7, -1);
}

function assertProtocolError(fn: () => unknown, replyCode: number, pattern?: RegExp): AmqpProtocolError {
  let caught: unknown;
  assert.throws(fn, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof AmqpProtocolError, `expected AmqpProtocolError, got ${String(caught)}`);
  assert.equal(caught.replyCode, replyCode, caught.message);
  if (pattern !== undefined) assert.match(caught.message, pattern);
  return caught;
}

describe('AMQP methods', () => {
  it('has a sample for every method it codes, and every id matches amqplib', () => {
    const sampled = new Set(sampleMethods().map((method) => method.name));
    for (const info of allMethods()) {
      assert.ok(sampled.has(info.name), `no sample for ${info.name}`);
      const id = amqplibMethodId(info.name);
      assert.equal(info.classId, id >>> 16, info.name);
      assert.equal(info.methodId, id & 0xffff, info.name);
      assert.equal(methodInfoById(info.classId, info.methodId)?.name, info.name);
    }
    assert.equal(allMethods().length, 62);
  });

  it('round-trips every method through its own encoder and decoder', () => {
    for (const method of sampleMethods()) {
      assert.deepEqual(decodeMethod(payloadOf(method)), decodedForm(method), method.name);
    }
  });

  it('encodes every method so that amqplib decodes the same values', () => {
    for (const method of sampleMethods()) {
      const frame = encodeMethodFrame(3, method);
      const parsed = amqplibFrame.parseFrame(frame, 0);
      assert.ok(parsed !== false, method.name);
      const decoded = amqplibFrame.decodeFrame(parsed);
      assert.equal(decoded.id, amqplibMethodId(method.name), method.name);
      assert.equal(decoded.channel, 3);
      assert.deepEqual(fromAmqplibFields(decoded.fields ?? {}), methodFields(decodedForm(method)), method.name);
    }
  });

  it('decodes every method frame amqplib encodes to the same values', () => {
    for (const method of sampleMethods()) {
      const frame = amqplibDefs.encodeMethod(amqplibMethodId(method.name), 5, toAmqplibFields(method));
      assert.deepEqual(decodeMethod(onlyPayload(frame)), decodedForm(method), method.name);
    }
  });

  it('packs consecutive bits into one octet, first bit lowest', () => {
    const payload = payloadOf({
      name: 'queue.declare',
      queue: '',
      passive: true,
      durable: false,
      exclusive: true,
      autoDelete: false,
      noWait: true,
      arguments: {},
    });
    // class 50, method 10, ticket 0, empty queue name, bits, empty table
    assert.deepEqual([...payload], [0, 50, 0, 10, 0, 0, 0, 0b10101, 0, 0, 0, 0]);
  });

  it('answers truncated arguments of every method with SYNTAX_ERROR naming the method', () => {
    for (const method of sampleMethods()) {
      const payload = payloadOf(method);
      const info = methodInfo(method.name);
      for (let length = 4; length < payload.length; length++) {
        const err = assertProtocolError(() => decodeMethod(payload.subarray(0, length)), ReplyCode.SyntaxError);
        assert.equal(err.classId, info.classId);
        assert.equal(err.methodId, info.methodId);
        assert.equal(err.scope, 'connection');
      }
    }
  });

  it('refuses bytes after the last argument with SYNTAX_ERROR', () => {
    const payload = payloadOf({ name: 'basic.ack', deliveryTag: 1, multiple: false });
    assertProtocolError(
      () => decodeMethod(Buffer.concat([payload, Buffer.from([0])])),
      ReplyCode.SyntaxError,
      /unexpected bytes/,
    );
  });

  it('answers an unknown class or method with NOT_IMPLEMENTED', () => {
    const unknownClass = assertProtocolError(() => decodeMethod(Buffer.from([0, 99, 0, 10])), ReplyCode.NotImplemented);
    assert.equal(unknownClass.classId, 99);
    assert.equal(unknownClass.methodId, 10);
    assertProtocolError(() => decodeMethod(Buffer.from([0, 60, 0, 99])), ReplyCode.NotImplemented);
    // access.request (class 30) is not coded: RabbitMQ-era clients no longer send it.
    assertProtocolError(() => decodeMethod(Buffer.from([0, 30, 0, 10, 0])), ReplyCode.NotImplemented);
  });

  it('answers a payload too short for a method id with FRAME_ERROR', () => {
    assertProtocolError(() => decodeMethod(Buffer.from([0, 60, 0])), ReplyCode.FrameError);
  });

  it('refuses server-only methods from a client with COMMAND_INVALID and accepts the rest', () => {
    for (const method of sampleMethods()) {
      const info = methodInfo(method.name);
      const payload = payloadOf(method);
      if (info.sender === 'server') {
        const err = assertProtocolError(() => decodeClientMethod(payload), ReplyCode.CommandInvalid);
        assert.equal(err.classId, info.classId);
      } else {
        assert.equal(decodeClientMethod(payload).name, method.name);
      }
    }
  });

  it('marks exactly publish, return, deliver and get-ok as carrying content', () => {
    const withContent = allMethods()
      .filter((info) => info.hasContent)
      .map((info) => info.name);
    assert.deepEqual(withContent.sort(), ['basic.deliver', 'basic.get-ok', 'basic.publish', 'basic.return']);
  });

  it('decodes delivery tags above 2^32 exactly', () => {
    const method: AmqpMethod = { name: 'basic.nack', deliveryTag: 2 ** 53 - 1, multiple: false, requeue: true };
    assert.deepEqual(decodeMethod(payloadOf(method)), method);
  });
});
