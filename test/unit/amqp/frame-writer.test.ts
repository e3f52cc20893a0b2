import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FRAME_MIN_SIZE_BYTES, FrameType } from '../../../src/adapters/amqp/constants.js';
import { decodeContentHeader } from '../../../src/adapters/amqp/content-header.js';
import { AmqpEncodeError } from '../../../src/adapters/amqp/errors.js';
import { FrameDecoder } from '../../../src/adapters/amqp/frame-decoder.js';
import {
  encodeBodyFrames,
  encodeContentCommand,
  encodeMethodFrame,
  HEARTBEAT_FRAME,
  INLINE_BODY_MAX_BYTES,
  maxBodyFramePayloadBytes,
} from '../../../src/adapters/amqp/frame-writer.js';
import { decodeMethod, type AmqpMethod } from '../../../src/adapters/amqp/methods.js';
import { amqplibFrame, defined, sampleProperties } from './amqplib-reference.js';

interface Decoded {
  frames: { type: number; channelId: number; size: number }[];
  method?: AmqpMethod;
  bodySizeBytes?: number;
  body: Buffer;
}

/** Run bytes through our decoder, collecting the command they carry. */
function decodeCommand(parts: Buffer[], maxFrameBytes: number): Decoded {
  const out: Decoded = { frames: [], body: Buffer.alloc(0) };
  const bodies: Buffer[] = [];
  const decoder = new FrameDecoder(
    {
      onProtocolHeader: () => assert.fail('no header expected'),
      onFrame: (type, channelId, payload) => {
        out.frames.push({ type, channelId, size: payload.length });
        if (type === FrameType.Method) out.method = decodeMethod(payload);
        else if (type === FrameType.Header) out.bodySizeBytes = decodeContentHeader(payload).bodySizeBytes;
        else if (type === FrameType.Body) bodies.push(Buffer.from(payload));
      },
    },
    { maxFrameBytes, expectProtocolHeader: false },
  );
  for (const part of parts) decoder.push(part);
  out.body = Buffer.concat(bodies);
  return out;
}

function patternBody(sizeBytes: number): Buffer {
  const body = Buffer.alloc(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) body[i] = (i * 31 + 7) & 0xff;
  return body;
}

const deliver: AmqpMethod = {
  name: 'basic.deliver',
  consumerTag: 'ctag',
  deliveryTag: 42,
  redelivered: false,
  exchange: 'orders',
  routingKey: 'eu.created',
};

describe('AMQP frame writer', () => {
  it('splits a body into frames of at most frame_max - 8 payload bytes', () => {
    const body = patternBody(10000);
    const frames = encodeBodyFrames(7, body, FRAME_MIN_SIZE_BYTES);
    assert.deepEqual(
      frames.map((frame) => frame.length),
      [4096, 4096, 1824 + 8],
    );
    const decoded = decodeCommand(frames, FRAME_MIN_SIZE_BYTES);
    assert.deepEqual(
      decoded.frames.map((frame) => frame.size),
      [4088, 4088, 1824],
    );
    assert.ok(decoded.frames.every((frame) => frame.type === FrameType.Body && frame.channelId === 7));
    assert.deepEqual(decoded.body, body);
    assert.equal(maxBodyFramePayloadBytes(131072), 131064);
  });

  it('sends no body frame for an empty body', () => {
    assert.deepEqual(encodeBodyFrames(1, Buffer.alloc(0), FRAME_MIN_SIZE_BYTES), []);
    const decoded = decodeCommand(encodeContentCommand(1, deliver, {}, Buffer.alloc(0), FRAME_MIN_SIZE_BYTES), 4096);
    assert.deepEqual(
      decoded.frames.map((frame) => frame.type),
      [FrameType.Method, FrameType.Header],
    );
    assert.equal(decoded.bodySizeBytes, 0);
  });

  it('writes a small content command as one buffer of method, header and body frames', () => {
    const body = patternBody(1024);
    const parts = encodeContentCommand(3, deliver, sampleProperties(), body, FRAME_MIN_SIZE_BYTES);
    assert.equal(parts.length, 1);
    const decoded = decodeCommand(parts, FRAME_MIN_SIZE_BYTES);
    assert.deepEqual(decoded.method, deliver);
    assert.equal(decoded.bodySizeBytes, 1024);
    assert.deepEqual(decoded.body, body);

    // amqplib reads the same three frames.
    let rest = parts[0] as Buffer;
    const types: number[] = [];
    for (;;) {
      const parsed = amqplibFrame.parseFrame(rest, 0);
      if (parsed === false) break;
      const frame = amqplibFrame.decodeFrame(parsed);
      types.push(parsed.type);
      if (parsed.type === FrameType.Header) assert.deepEqual(defined(frame.fields ?? {}), sampleProperties());
      if (parsed.type === FrameType.Body) assert.deepEqual(frame.content, body);
      rest = rest.subarray(parsed.size + 8);
    }
    assert.deepEqual(types, [1, 2, 3]);
  });

  it('frames a large body around views of it instead of copying it', () => {
    const body = patternBody(INLINE_BODY_MAX_BYTES * 3 + 5);
    const parts = encodeContentCommand(2, deliver, { deliveryMode: 2 }, body, FRAME_MIN_SIZE_BYTES);
    const views = parts.filter((part) => part.buffer === body.buffer);
    assert.equal(views.length, Math.ceil(body.length / 4088));
    const decoded = decodeCommand(parts, FRAME_MIN_SIZE_BYTES);
    assert.equal(decoded.bodySizeBytes, body.length);
    assert.deepEqual(decoded.body, body);
    assert.ok(decoded.frames.every((frame) => frame.size <= FRAME_MIN_SIZE_BYTES - 8));
  });

  it('frames a body that sits at an offset inside a larger buffer', () => {
    const backing = patternBody(200000);
    const body = backing.subarray(1000, 151000);
    const decoded = decodeCommand(encodeContentCommand(2, deliver, {}, body, 131072), 131072);
    assert.deepEqual(decoded.body, body);
  });

  it('refuses a method or header frame larger than frame_max, which cannot be split', () => {
    const headers = { big: 'x'.repeat(5000) };
    assert.throws(
      () => encodeContentCommand(1, deliver, { headers }, Buffer.alloc(1), FRAME_MIN_SIZE_BYTES),
      AmqpEncodeError,
    );
    const declare: AmqpMethod = {
      name: 'queue.declare',
      queue: 'q',
      passive: false,
      durable: false,
      exclusive: false,
      autoDelete: false,
      noWait: false,
      arguments: headers,
    };
    assert.throws(() => encodeMethodFrame(1, declare, FRAME_MIN_SIZE_BYTES), AmqpEncodeError);
    assert.ok(encodeMethodFrame(1, declare).length > FRAME_MIN_SIZE_BYTES);
  });

  it('refuses a routing key over 255 bytes and still encodes the next command correctly', () => {
    const bad: AmqpMethod = { ...deliver, name: 'basic.deliver', routingKey: 'k'.repeat(256) } as AmqpMethod;
    assert.throws(
      () => encodeContentCommand(1, bad, {}, Buffer.alloc(3), FRAME_MIN_SIZE_BYTES),
      /routingKey is 256 bytes/,
    );
    const decoded = decodeCommand(encodeContentCommand(1, deliver, {}, Buffer.from('abc'), FRAME_MIN_SIZE_BYTES), 4096);
    assert.deepEqual(decoded.method, deliver);
    assert.equal(decoded.body.toString(), 'abc');
  });

  it('writes the heartbeat frame amqplib writes', () => {
    assert.deepEqual(HEARTBEAT_FRAME, amqplibFrame.HEARTBEAT_BUF);
  });
});
