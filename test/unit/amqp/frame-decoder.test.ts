import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { FRAME_MIN_SIZE_BYTES, FrameType, PROTOCOL_HEADER } from '../../../src/adapters/amqp/constants.js';
import { decodeContentHeader } from '../../../src/adapters/amqp/content-header.js';
import { AmqpProtocolError, ProtocolHeaderMismatchError } from '../../../src/adapters/amqp/errors.js';
import { FrameDecoder, type FrameDecoderOptions } from '../../../src/adapters/amqp/frame-decoder.js';
import { encodeContentCommand, encodeMethodFrame, HEARTBEAT_FRAME } from '../../../src/adapters/amqp/frame-writer.js';
import { decodeClientMethod, decodeMethod } from '../../../src/adapters/amqp/methods.js';
import { ReplyCode } from '../../../src/adapters/amqp/reply-codes.js';
import { seededRandom, testSeed } from '../../helpers/seed.js';
import {
  amqplibDefs,
  amqplibFrame,
  amqplibMethodId,
  sampleMethods,
  sampleProperties,
  toAmqplibFields,
} from './amqplib-reference.js';

type Event = string;

/** Feed chunks and describe what came out: "header" or "type/channel/payload-hex". */
function decodeChunks(chunks: Buffer[], options: Partial<FrameDecoderOptions> = {}): Event[] {
  const events: Event[] = [];
  const decoder = new FrameDecoder(
    {
      onProtocolHeader: () => events.push('header'),
      onFrame: (type, channelId, payload) => events.push(`${type}/${channelId}/${payload.toString('hex')}`),
    },
    { maxFrameBytes: 131072, ...options },
  );
  for (const chunk of chunks) decoder.push(chunk);
  return events;
}

/** A connection's worth of traffic: header, every method, a content command, a heartbeat. */
function sampleStream(): Buffer {
  const body = Buffer.alloc(5000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
  return Buffer.concat([
    PROTOCOL_HEADER,
    ...sampleMethods().map((method, index) => encodeMethodFrame(index % 3, method)),
    ...encodeContentCommand(
      1,
      { name: 'basic.publish', exchange: 'x', routingKey: 'k', mandatory: false, immediate: false },
      sampleProperties(),
      body,
      FRAME_MIN_SIZE_BYTES,
    ),
    HEARTBEAT_FRAME,
  ]);
}

function assertFrameError(fn: () => unknown, pattern?: RegExp): AmqpProtocolError {
  let caught: unknown;
  assert.throws(fn, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof AmqpProtocolError, `expected AmqpProtocolError, got ${String(caught)}`);
  assert.equal(caught.replyCode, ReplyCode.FrameError);
  assert.equal(caught.closesConnection, true);
  if (pattern !== undefined) assert.match(caught.message, pattern);
  return caught;
}

function frameHeader(type: number, channelId: number, size: number): Buffer {
  const header = Buffer.alloc(7);
  header[0] = type;
  header.writeUInt16BE(channelId, 1);
  header.writeUInt32BE(size, 3);
  return header;
}

describe('AMQP frame decoder', () => {
  it('reports the protocol header, then frames', () => {
    const events = decodeChunks([Buffer.concat([PROTOCOL_HEADER, HEARTBEAT_FRAME])]);
    assert.deepEqual(events, ['header', '8/0/']);
  });

  it('decodes every frame the same when the stream is split at any byte boundary', () => {
    const stream = sampleStream();
    const whole = decodeChunks([stream]);
    assert.equal(whole.length, 1 + sampleMethods().length + 2 + 2 + 1);
    for (let cut = 1; cut < stream.length; cut++) {
      const split = decodeChunks([stream.subarray(0, cut), stream.subarray(cut)]);
      assert.deepEqual(split, whole, `split at ${cut}`);
    }
  });

  it('decodes the same when fed one byte at a time, so headers split across many reads work', () => {
    const stream = sampleStream();
    const bytes: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) bytes.push(stream.subarray(i, i + 1));
    assert.deepEqual(decodeChunks(bytes), decodeChunks([stream]));
  });

  it('hands out whole frames as views of the chunk and copies only frames that span chunks', () => {
    const frame = encodeMethodFrame(1, { name: 'basic.ack', deliveryTag: 1, multiple: false });
    const payloads: Buffer[] = [];
    const decoder = new FrameDecoder(
      { onProtocolHeader: () => undefined, onFrame: (_type, _channel, payload) => payloads.push(payload) },
      { maxFrameBytes: FRAME_MIN_SIZE_BYTES, expectProtocolHeader: false },
    );
    const chunk = Buffer.concat([frame, frame.subarray(0, 10)]);
    decoder.push(chunk);
    assert.equal(decoder.bufferedBytes, 3, 'the 3 payload bytes of the started frame are held');
    decoder.push(frame.subarray(10));
    assert.equal(decoder.bufferedBytes, 0);
    const expected = Buffer.from(frame.subarray(7, -1));
    assert.deepEqual(payloads, [expected, expected]);
    // Overwrite the caller's chunk: the in-place view changes with it, the spanning copy does not.
    chunk.fill(0);
    assert.notDeepEqual(payloads[0], expected);
    assert.deepEqual(payloads[1], expected);
  });

  it('decodes frames amqplib encodes', () => {
    const frames = [
      ...sampleMethods().map((method) =>
        amqplibDefs.encodeMethod(amqplibMethodId(method.name), 4, toAmqplibFields(method)),
      ),
      amqplibDefs.encodeProperties(60, 4, 3, { contentType: 'text/plain', deliveryMode: 2 }),
      amqplibFrame.makeBodyFrame(4, Buffer.from('abc')),
      amqplibFrame.HEARTBEAT_BUF,
    ];
    const decoded: string[] = [];
    const decoder = new FrameDecoder(
      {
        onProtocolHeader: () => assert.fail('no header expected'),
        onFrame: (type, channelId, payload) => {
          assert.equal(channelId, type === FrameType.Heartbeat ? 0 : 4);
          if (type === FrameType.Method) decoded.push(decodeMethod(payload).name);
          else if (type === FrameType.Header) decoded.push(`size ${decodeContentHeader(payload).bodySizeBytes}`);
          else decoded.push(`${type}:${payload.toString()}`);
        },
      },
      { maxFrameBytes: 131072, expectProtocolHeader: false },
    );
    decoder.push(Buffer.concat(frames));
    assert.deepEqual(decoded, [...sampleMethods().map((method) => method.name), 'size 3', '3:abc', '8:']);
  });

  it('answers a wrong protocol header at the first wrong octet, carrying the header to send back', () => {
    for (const [input, received] of [
      ['GET / HTTP/1.1\r\n', 'G'],
      ['AMQP\x01\x01\x00\x09', 'AMQP\x01'],
      ['AMQP\x00\x00\x09\x00', 'AMQP\x00\x00\x09\x00'],
    ] as const) {
      let caught: unknown;
      try {
        decodeChunks([Buffer.from(input, 'latin1')]);
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof ProtocolHeaderMismatchError, input);
      assert.deepEqual(caught.reply, PROTOCOL_HEADER);
      assert.deepEqual(caught.received, Buffer.from(received, 'latin1'));
    }
  });

  it('waits for all 8 protocol header octets across reads', () => {
    const chunks = [...PROTOCOL_HEADER].map((byte) => Buffer.from([byte]));
    assert.deepEqual(decodeChunks(chunks.slice(0, 7)), []);
    assert.deepEqual(decodeChunks(chunks), ['header']);
  });

  it('answers an announced frame over frame_max with FRAME_ERROR before buffering its payload', () => {
    let frames = 0;
    const decoder = new FrameDecoder(
      { onProtocolHeader: () => undefined, onFrame: () => frames++ },
      { maxFrameBytes: FRAME_MIN_SIZE_BYTES, expectProtocolHeader: false },
    );
    // Only the 7 header octets of a 2 GiB frame: the error comes at once, nothing is held.
    assertFrameError(() => decoder.push(frameHeader(FrameType.Body, 1, 0x7fffffff)), /2147483647-byte payload/);
    assert.equal(decoder.bufferedBytes, 0);
    assert.equal(frames, 0);
    // The decoder stays failed.
    assertFrameError(() => decoder.push(HEARTBEAT_FRAME));
  });

  it('accepts a payload of exactly frame_max - 8 bytes and refuses one byte more', () => {
    const atLimit = Buffer.concat([frameHeader(FrameType.Body, 1, 4088), Buffer.alloc(4088), Buffer.from([206])]);
    assert.equal(decodeChunks([atLimit], { maxFrameBytes: 4096, expectProtocolHeader: false }).length, 1);
    assertFrameError(() =>
      decodeChunks([frameHeader(FrameType.Body, 1, 4089)], { maxFrameBytes: 4096, expectProtocolHeader: false }),
    );
  });

  it('applies a newly negotiated frame_max from the next frame', () => {
    const big = Buffer.concat([frameHeader(FrameType.Body, 1, 100000), Buffer.alloc(100000), Buffer.from([206])]);
    const events: number[] = [];
    const decoder = new FrameDecoder(
      { onProtocolHeader: () => undefined, onFrame: (_type, _channel, payload) => events.push(payload.length) },
      { maxFrameBytes: FRAME_MIN_SIZE_BYTES, expectProtocolHeader: false },
    );
    decoder.setMaxFrameBytes(131072);
    assert.equal(decoder.maxFrameBytes, 131072);
    decoder.push(big);
    assert.deepEqual(events, [100000]);
  });

  it('answers a bad frame-end octet with FRAME_ERROR, whole or split', () => {
    const frame = Buffer.from(HEARTBEAT_FRAME);
    frame[7] = 0;
    assertFrameError(() => decodeChunks([frame], { expectProtocolHeader: false }), /frame-end octet is 0/);
    assertFrameError(() => decodeChunks([frame.subarray(0, 4), frame.subarray(4)], { expectProtocolHeader: false }));
  });

  it('answers an unknown frame type with FRAME_ERROR', () => {
    assertFrameError(
      () => decodeChunks([Buffer.from([4, 0, 0, 0, 0, 0, 0, 206])], { expectProtocolHeader: false }),
      /unknown frame type 4/,
    );
  });

  it('stays failed after a handler throws', () => {
    const decoder = new FrameDecoder(
      {
        onProtocolHeader: () => undefined,
        onFrame: () => {
          throw new Error('handler bug');
        },
      },
      { maxFrameBytes: FRAME_MIN_SIZE_BYTES, expectProtocolHeader: false },
    );
    assert.throws(() => decoder.push(HEARTBEAT_FRAME), /handler bug/);
    assert.throws(() => decoder.push(HEARTBEAT_FRAME), AmqpProtocolError);
  });

  it('throws nothing but AmqpProtocolError for seeded random mutations of valid traffic', (t: TestContext) => {
    const seed = testSeed();
    t.diagnostic(`seed ${seed} (replay with SEED=${seed})`);
    const random = seededRandom(seed);
    const pick = (n: number): number => Math.floor(random() * n);
    const base = sampleStream();
    const deadline = Date.now() + 5000;
    let rejected = 0;
    let iterations = 0;
    for (; iterations < 3000 && Date.now() < deadline; iterations++) {
      let stream = Buffer.from(base);
      for (let m = 1 + pick(3); m > 0; m--) {
        const at = pick(stream.length);
        switch (pick(5)) {
          case 0:
            stream[at] = pick(256);
            break;
          case 1:
            stream[at] = (stream[at] ?? 0) ^ (1 << pick(8));
            break;
          case 2:
            stream = stream.subarray(0, at);
            break;
          case 3:
            stream = Buffer.concat([stream.subarray(0, at), stream.subarray(at + 1 + pick(16))]);
            break;
          default:
            stream = Buffer.concat([stream.subarray(0, at), Buffer.from([pick(256), pick(256)]), stream.subarray(at)]);
        }
      }
      const chunks: Buffer[] = [];
      for (let at = 0; at < stream.length;) {
        const size = 1 + pick(600);
        chunks.push(stream.subarray(at, at + size));
        at += size;
      }
      const decoder = new FrameDecoder(
        {
          onProtocolHeader: () => undefined,
          onFrame: (type, _channelId, payload) => {
            if (type === FrameType.Method) decodeClientMethod(payload);
            else if (type === FrameType.Header) decodeContentHeader(payload);
          },
        },
        { maxFrameBytes: 8192 },
      );
      try {
        for (const chunk of chunks) decoder.push(chunk);
      } catch (err) {
        assert.ok(err instanceof AmqpProtocolError, `seed ${seed} iteration ${iterations}: ${String(err)}`);
        rejected++;
      }
    }
    assert.ok(iterations >= 100, `only ${iterations} iterations ran`);
    assert.ok(rejected > 0, 'some mutations must be rejected');
  });
});
