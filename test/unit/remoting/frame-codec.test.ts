import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeBinaryHeader, encodeBinaryHeader } from '../../../src/engine/remoting/binary-header.js';
import { SerializeType } from '../../../src/engine/remoting/codes.js';
import { createRequest, createResponse, type RemotingCommand } from '../../../src/engine/remoting/command.js';
import {
  decodeFrame,
  encodeCommand,
  encodeCommandParts,
  FrameDecoder,
  FrameError,
  FrameErrorReason,
} from '../../../src/engine/remoting/frame-codec.js';
import { seededRandom, testSeed } from '../../helpers/seed.js';

function sampleCommands(): RemotingCommand[] {
  const json = createRequest(
    105,
    { topic: 'orders', empty: '', unicode: 'caf\u00e9 \u4e2d' },
    Buffer.from('body bytes'),
  );
  const bare = createRequest(34);
  const binary: RemotingCommand = {
    ...createRequest(10, { a: 'producer', b: 'TopicTest', i: 'TAGS\u0001x\u0002' }, Buffer.from([0, 1, 2, 255])),
    serializeType: SerializeType.RocketMq,
    language: 'GO',
  };
  const response = createResponse(json, 17, 'No topic route info in name server for the topic: orders');
  const binaryResponse = createResponse(binary, 0, undefined, { msgId: 'ABC', queueId: '3' });
  return [json, bare, binary, response, binaryResponse];
}

function decodeAll(decoder: FrameDecoder, chunks: Buffer[]): RemotingCommand[] {
  const out: RemotingCommand[] = [];
  for (const chunk of chunks) decoder.push(chunk, (command) => out.push(command));
  return out;
}

function normalized(command: RemotingCommand): RemotingCommand {
  const copy: RemotingCommand = { ...command, extFields: { ...command.extFields } };
  if (copy.body !== undefined) copy.body = Buffer.from(copy.body);
  return copy;
}

function frameBytes(serializeType: number, header: Buffer, body: Buffer = Buffer.alloc(0)): Buffer {
  const frame = Buffer.alloc(8 + header.length + body.length);
  frame.writeInt32BE(4 + header.length + body.length, 0);
  frame.writeUInt32BE(((serializeType << 24) | header.length) >>> 0, 4);
  header.copy(frame, 8);
  body.copy(frame, 8 + header.length);
  return frame;
}

function assertFrameError(fn: () => unknown, reason: FrameErrorReason): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FrameError, `expected FrameError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    return true;
  });
}

describe('remoting frame codec', () => {
  it('round-trips JSON and binary commands with remark, extFields and body', () => {
    for (const command of sampleCommands()) {
      const decoded = decodeFrame(encodeCommand(command));
      assert.deepEqual(normalized(decoded), normalized(command));
    }
  });

  it('writes the JSON header RocketMQ clients expect, with serializeTypeCurrentRPC', () => {
    const frame = encodeCommand(createRequest(105, { topic: 't' }));
    const headerLength = frame.readUInt32BE(4);
    assert.equal(headerLength >>> 24, 0);
    const header = JSON.parse(frame.subarray(8, 8 + (headerLength & 0xffffff)).toString()) as Record<string, unknown>;
    assert.equal(header['code'], 105);
    assert.deepEqual(header['extFields'], { topic: 't' });
    assert.equal(header['serializeTypeCurrentRPC'], 'JSON');
    assert.equal(frame.readInt32BE(0), frame.length - 4);
  });

  it('lays out the binary header as RocketMQSerializable does', () => {
    const header = encodeBinaryHeader({
      code: 310,
      language: 'JAVA',
      version: 433,
      opaque: 7,
      flag: 1,
      remark: 'ok',
      extFields: { k: 'vv' },
    });
    const expected = Buffer.from([
      0x01, 0x36, // code 310
      0x00, // JAVA
      0x01, 0xb1, // version 433
      0, 0, 0, 7, // opaque
      0, 0, 0, 1, // flag
      0, 0, 0, 2, 0x6f, 0x6b, // remark "ok"
      0, 0, 0, 9, // extFields bytes: 2 + 1 + 4 + 2
      0, 1, 0x6b, 0, 0, 0, 2, 0x76, 0x76,
    ]); // prettier-ignore
    assert.deepEqual(header, expected);
    assert.deepEqual(decodeBinaryHeader(header), {
      code: 310,
      language: 'JAVA',
      version: 433,
      opaque: 7,
      flag: 1,
      remark: 'ok',
      extFields: { k: 'vv' },
    });
  });

  it('round-trips binary headers whose fields are ASCII, non-ASCII or long, and decodes invalid UTF-8 as Buffer does', () => {
    const headers: Array<Record<string, string>> = [
      { a: 'producer', topic: 'TopicTest', i: 'TAGS\u0001x\u0002UNIQ_KEY\u0001ABC\u0002' },
      { a: 'caf\u00e9', 'cl\u00e9': 'v', b: '\u4e2d\u6587 \ud83d\ude00', ascii: 'after' },
      { long: 'x'.repeat(65), longer: '\u00e9'.repeat(70), empty: '' },
    ];
    for (const extFields of headers) {
      const command: RemotingCommand = { ...createRequest(10, extFields), serializeType: SerializeType.RocketMq };
      assert.deepEqual(decodeFrame(encodeCommand(command)).extFields, extFields);
    }
    // A value byte that is not UTF-8 decodes to U+FFFD, as Buffer#toString('utf8') makes it.
    const frame = encodeCommand({ ...createRequest(10, { k: 'abc' }), serializeType: SerializeType.RocketMq });
    frame[frame.length - 2] = 0xe9;
    assert.equal(decodeFrame(frame).extFields['k'], 'a\ufffdc');
  });

  it('round-trips a binary header too large for the encoder scratch buffer', () => {
    const extFields: Record<string, string> = { big: 'x\u00e9'.repeat(40_000), a: 'b', '\u4e2d': '' };
    const header = { code: 320, language: 'JAVA', version: 433, opaque: 9, flag: 0, remark: 'r', extFields };
    const encoded = encodeBinaryHeader(header);
    assert.ok(encoded.length > 64 * 1024);
    assert.deepEqual(decodeBinaryHeader(encoded), header);
    const command: RemotingCommand = { ...createRequest(320, extFields), serializeType: SerializeType.RocketMq };
    assert.deepEqual(normalized(decodeFrame(encodeCommand(command))), normalized(command));
  });

  it('writes the same JSON header bytes as JSON.stringify of the header object', () => {
    for (const command of sampleCommands().filter((each) => each.serializeType === SerializeType.Json)) {
      const header: Record<string, unknown> = {
        code: command.code,
        language: command.language,
        version: command.version,
        opaque: command.opaque,
        flag: command.flag,
      };
      if (command.remark !== undefined) header['remark'] = command.remark;
      header['extFields'] = command.extFields;
      header['serializeTypeCurrentRPC'] = 'JSON';
      const frame = encodeCommand(command);
      const headerBytes = frame.readUInt32BE(4) & 0xffffff;
      assert.equal(frame.subarray(8, 8 + headerBytes).toString('utf8'), JSON.stringify(header));
    }
  });

  it('coerces non-string extFields values to strings and ignores unknown header fields', () => {
    const header = Buffer.from(
      JSON.stringify({
        code: 11,
        language: 'JAVA',
        version: 121,
        opaque: 9,
        flag: 0,
        extFields: { queueId: 3, commitOffset: 12345678901, unitMode: false, skip: null, nested: { a: 1 } },
        serializeTypeCurrentRPC: 'JSON',
        somethingNew: [1, 2],
      }),
    );
    const command = decodeFrame(frameBytes(0, header));
    assert.deepEqual(command.extFields, {
      queueId: '3',
      commitOffset: '12345678901',
      unitMode: 'false',
      nested: '{"a":1}',
    });
    assert.equal(command.remark, undefined);
    assert.equal(command.body, undefined);
  });

  it('keeps a "__proto__" header field as a plain field', () => {
    const header = Buffer.from('{"code":1,"opaque":1,"flag":0,"extFields":{"__proto__":"x","a":"b"}}');
    const command = decodeFrame(frameBytes(0, header));
    assert.equal(Object.getPrototypeOf(command.extFields), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(command.extFields, '__proto__')?.value, 'x');
  });

  it('decodes every valid frame split at every byte boundary', () => {
    const commands = sampleCommands();
    const frames = commands.map((command) => encodeCommand(command));
    const stream = Buffer.concat(frames);
    const expected = commands.map(normalized);
    for (let cut = 0; cut <= stream.length; cut++) {
      const decoded = decodeAll(new FrameDecoder(), [stream.subarray(0, cut), stream.subarray(cut)]);
      assert.deepEqual(decoded.map(normalized), expected, `split at ${cut}`);
    }
    for (const frame of frames) {
      for (let a = 0; a < frame.length; a++) {
        for (let b = a; b < frame.length; b += 7) {
          const decoded = decodeAll(new FrameDecoder(), [
            frame.subarray(0, a),
            frame.subarray(a, b),
            frame.subarray(b),
          ]);
          assert.equal(decoded.length, 1, `three pieces at ${a}/${b}`);
        }
      }
    }
    const byteByByte = decodeAll(
      new FrameDecoder(),
      [...stream].map((byte) => Buffer.from([byte])),
    );
    assert.deepEqual(byteByByte.map(normalized), expected);
  });

  it('decodes frames within one chunk in place and copies only a frame that spans chunks', () => {
    const stream = Buffer.concat(sampleCommands().map((command) => encodeCommand(command)));
    const inPlace = decodeAll(new FrameDecoder(), [stream]);
    const withBody = inPlace.find((command) => command.body !== undefined);
    assert.equal(withBody?.body?.buffer, stream.buffer);

    const decoder = new FrameDecoder();
    const half = Math.floor(stream.length / 2);
    decodeAll(decoder, [stream.subarray(0, half)]);
    assert.ok(decoder.bufferedBytes > 0);
    decodeAll(decoder, [stream.subarray(half)]);
    assert.equal(decoder.bufferedBytes, 0);
  });

  it('writes a body as its own part so sockets need not copy it', () => {
    const body = Buffer.alloc(1024, 7);
    const parts = encodeCommandParts(createRequest(10, {}, body));
    assert.equal(parts.length, 2);
    assert.equal(parts[1], body);
  });

  it('refuses an oversize frame from its length field alone, before buffering it', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    const length = Buffer.alloc(4);
    length.writeInt32BE(1021, 0);
    assertFrameError(() => decoder.push(length, () => undefined), FrameErrorReason.FrameTooLarge);
    assert.equal(decoder.bufferedBytes, 0);
    // exactly at the limit is fine
    const ok = new FrameDecoder({ maxFrameBytes: 1024 });
    const header = Buffer.from('{"code":1,"opaque":1,"flag":0}');
    const frame = frameBytes(0, header, Buffer.alloc(1024 - 8 - header.length));
    assert.equal(decodeAll(ok, [frame]).length, 1);
    // a length field split across chunks is checked as soon as it is complete
    const split = new FrameDecoder({ maxFrameBytes: 1024 });
    split.push(length.subarray(0, 2), () => undefined);
    assertFrameError(() => split.push(length.subarray(2), () => undefined), FrameErrorReason.FrameTooLarge);
  });

  it('names each way a frame can be malformed', () => {
    const negative = Buffer.from([0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0]);
    assertFrameError(() => new FrameDecoder().push(negative, () => undefined), FrameErrorReason.NegativeLength);
    const tooSmall = Buffer.from([0, 0, 0, 2, 0, 0]);
    assertFrameError(() => new FrameDecoder().push(tooSmall, () => undefined), FrameErrorReason.LengthTooSmall);
    const headerTooLong = Buffer.from([0, 0, 0, 6, 0, 0, 0, 9, 0x7b, 0x7d]);
    assertFrameError(() => decodeFrame(headerTooLong), FrameErrorReason.HeaderLengthTooLarge);
    assertFrameError(() => decodeFrame(frameBytes(2, Buffer.from('{}'))), FrameErrorReason.UnknownSerializeType);
    assertFrameError(() => decodeFrame(frameBytes(0, Buffer.from('{"code":'))), FrameErrorReason.InvalidJsonHeader);
    assertFrameError(() => decodeFrame(frameBytes(0, Buffer.from('[1,2]'))), FrameErrorReason.HeaderNotObject);
    assertFrameError(() => decodeFrame(frameBytes(0, Buffer.from('"x"'))), FrameErrorReason.HeaderNotObject);
    assertFrameError(
      () => decodeFrame(frameBytes(0, Buffer.from('{"opaque":1}'))),
      FrameErrorReason.InvalidHeaderField,
    );
    assertFrameError(
      () => decodeFrame(frameBytes(0, Buffer.from('{"code":"105","opaque":1}'))),
      FrameErrorReason.InvalidHeaderField,
    );
    assertFrameError(() => decodeFrame(frameBytes(0, Buffer.from('{"code":1}'))), FrameErrorReason.InvalidHeaderField);
    assertFrameError(
      () => decodeFrame(frameBytes(0, Buffer.from('{"code":1,"opaque":1,"flag":0.5}'))),
      FrameErrorReason.InvalidHeaderField,
    );
    assertFrameError(
      () => decodeFrame(frameBytes(0, Buffer.from('{"code":1,"opaque":1,"extFields":[1]}'))),
      FrameErrorReason.InvalidHeaderField,
    );
    assertFrameError(() => decodeFrame(frameBytes(1, Buffer.alloc(10))), FrameErrorReason.InvalidBinaryHeader);
    const binary = encodeBinaryHeader({
      code: 1,
      language: 'JAVA',
      version: 1,
      opaque: 1,
      flag: 0,
      extFields: { a: 'b' },
    });
    binary.writeInt32BE(1000, 13); // remark length beyond the header
    assertFrameError(() => decodeFrame(frameBytes(1, binary)), FrameErrorReason.InvalidBinaryHeader);
  });

  it('stays failed after a bad frame', () => {
    const decoder = new FrameDecoder();
    assertFrameError(
      () => decoder.push(Buffer.from([0xff, 0, 0, 0]), () => undefined),
      FrameErrorReason.NegativeLength,
    );
    assertFrameError(
      () => decoder.push(encodeCommand(createRequest(1)), () => undefined),
      FrameErrorReason.NegativeLength,
    );
  });

  it('delivers the good frames before a bad one in the same chunk', () => {
    const good = encodeCommand(createRequest(105, { topic: 'a' }));
    const bad = frameBytes(0, Buffer.from('not json'));
    const seen: number[] = [];
    assertFrameError(
      () => new FrameDecoder().push(Buffer.concat([good, bad]), (command) => seen.push(command.code)),
      FrameErrorReason.InvalidJsonHeader,
    );
    assert.deepEqual(seen, [105]);
  });

  it('throws nothing but FrameError for seeded random mutations of valid frames', () => {
    const seed = testSeed();
    const random = seededRandom(seed);
    const frames = sampleCommands().map((command) => encodeCommand(command));
    const maxFrameBytes = 4096;
    let failures = 0;
    for (let round = 0; round < 3000; round++) {
      const source = frames[Math.floor(random() * frames.length)] as Buffer;
      const mutated = Buffer.from(source);
      const edits = 1 + Math.floor(random() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(random() * mutated.length);
        mutated[at] =
          random() < 0.5 ? Math.floor(random() * 256) : (mutated[at] as number) ^ (1 << Math.floor(random() * 8));
      }
      const cut = Math.floor(random() * (mutated.length + 1));
      const truncated = random() < 0.2 ? mutated.subarray(0, Math.floor(random() * mutated.length)) : mutated;
      const decoder = new FrameDecoder({ maxFrameBytes });
      try {
        decodeAll(decoder, [truncated.subarray(0, cut), truncated.subarray(cut)]);
      } catch (err) {
        if (!(err instanceof FrameError)) assert.fail(`seed ${seed} round ${round}: threw ${String(err)}`);
        failures++;
      }
    }
    assert.ok(failures > 0, `seed ${seed}: mutations never failed, the test is not exercising errors`);
  });
});
