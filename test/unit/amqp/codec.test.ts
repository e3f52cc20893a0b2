import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  PayloadReader,
  PayloadWriter,
  readLong,
  readLongLong,
  readLongString,
  readLongStringBytes,
  readOctet,
  readShort,
  readShortString,
  writeLong,
  writeLongLong,
  writeLongString,
  writeOctet,
  writeShort,
  writeShortString,
} from '../../../src/adapters/amqp/codec.js';
import {
  AmqpEncodeError,
  AmqpProtocolError,
  ProtocolHeaderMismatchError,
  truncateUtf8,
} from '../../../src/adapters/amqp/errors.js';
import { allReplyCodes, isConnectionError, ReplyCode, replyCodeInfo } from '../../../src/adapters/amqp/reply-codes.js';

describe('AMQP primitive codec', () => {
  it('writes at an explicit offset and reads back the value with the bytes used', () => {
    const buf = Buffer.alloc(64, 0xee);
    let at = 3;
    at += writeOctet(buf, at, 250);
    at += writeShort(buf, at, 65000);
    at += writeLong(buf, at, 4000000000);
    at += writeLongLong(buf, at, 2 ** 52 + 5);
    at += writeShortString(buf, at, 'r\u00e9sum\u00e9');
    at += writeLongString(buf, at, 'long text');
    at += writeLongString(buf, at, Buffer.from([0, 1, 2]));
    assert.equal(buf[2], 0xee, 'bytes before the offset are untouched');

    let read = 3;
    const steps: [{ value: unknown; bytesUsed: number }, unknown, number][] = [];
    const next = <T>(result: { value: T; bytesUsed: number }, expected: T, bytes: number): void => {
      steps.push([result, expected, bytes]);
      read += result.bytesUsed;
    };
    next(readOctet(buf, read), 250, 1);
    next(readShort(buf, read), 65000, 2);
    next(readLong(buf, read), 4000000000, 4);
    next(readLongLong(buf, read), 2 ** 52 + 5, 8);
    next(readShortString(buf, read), 'r\u00e9sum\u00e9', 9);
    next(readLongString(buf, read), 'long text', 13);
    next(readLongStringBytes(buf, read), Buffer.from([0, 1, 2]), 7);
    for (const [result, expected, bytes] of steps) {
      assert.deepEqual(result.value, expected);
      assert.equal(result.bytesUsed, bytes);
    }
    assert.equal(read, at);
  });

  it('refuses to encode a short string over 255 bytes', () => {
    const buf = Buffer.alloc(1024);
    assert.equal(writeShortString(buf, 0, 'a'.repeat(255)), 256);
    assert.throws(() => writeShortString(buf, 0, 'a'.repeat(256)), AmqpEncodeError);
    // 128 two-byte characters: 128 UTF-16 units but 256 bytes.
    assert.throws(() => writeShortString(buf, 0, '\u00e9'.repeat(128), 'routingKey'), /routingKey is 256 bytes/);
    const writer = new PayloadWriter(Buffer.alloc(4));
    assert.throws(() => writer.shortString('\u4e2d'.repeat(86)), AmqpEncodeError);
    writer.shortString('\u4e2d'.repeat(85));
    assert.equal(writer.offsetBytes, 256);
  });

  it('refuses to write past the end of a caller buffer instead of truncating', () => {
    const buf = Buffer.alloc(6);
    assert.throws(() => writeShortString(buf, 0, 'abcdef'), AmqpEncodeError);
    assert.throws(() => writeShortString(buf, 2, '\u00e9\u00e9\u00e9'), AmqpEncodeError);
    assert.throws(() => writeLongString(buf, 0, 'ab\u00e9'), AmqpEncodeError);
    assert.throws(() => writeLongLong(buf, 0, 1), AmqpEncodeError);
    assert.throws(() => writeLongLong(Buffer.alloc(8), 0, -1), AmqpEncodeError);
    assert.equal(buf.toString('hex'), '000000000000');
  });

  it('answers a value running past the end of the payload with SYNTAX_ERROR', () => {
    const reader = new PayloadReader(Buffer.from([5, 0x61, 0x62, 9, 9]), 0, 3);
    reader.classId = 60;
    reader.methodId = 40;
    assert.throws(
      () => reader.shortString(),
      (err: unknown) =>
        err instanceof AmqpProtocolError &&
        err.replyCode === ReplyCode.SyntaxError &&
        err.classId === 60 &&
        err.methodId === 40,
    );
    assert.throws(() => readLongLong(Buffer.alloc(7), 0), AmqpProtocolError);
  });

  it('reads signed 64-bit values as numbers when exact and bigints beyond', () => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64BE(-(2n ** 53n) + 1n);
    assert.equal(new PayloadReader(buf, 0, 8).i64(), -(2 ** 53) + 1);
    buf.writeBigInt64BE(-(2n ** 53n));
    assert.equal(new PayloadReader(buf, 0, 8).i64(), -(2n ** 53n));
    buf.writeBigInt64BE(2n ** 62n + 1n);
    assert.equal(new PayloadReader(buf, 0, 8).i64(), 2n ** 62n + 1n);
  });

  it('decodes short strings with and without non-ASCII bytes alike', () => {
    for (const text of [
      '',
      'a',
      'amq.topic',
      'x'.repeat(24),
      'y'.repeat(25),
      'caf\u00e9',
      '\u{1f600}',
      'k'.repeat(200),
    ]) {
      const buf = Buffer.alloc(1 + Buffer.byteLength(text));
      writeShortString(buf, 0, text);
      assert.equal(readShortString(buf, 0).value, text);
    }
  });
});

describe('AMQP reply codes and errors', () => {
  it('lists the 19 reply codes with their names and scope', () => {
    const table = allReplyCodes().map((info) => `${info.code} ${info.name} ${info.scope}`);
    assert.deepEqual(table, [
      '200 REPLY_SUCCESS none',
      '311 CONTENT_TOO_LARGE channel',
      '312 NO_ROUTE channel',
      '313 NO_CONSUMERS channel',
      '320 CONNECTION_FORCED connection',
      '402 INVALID_PATH connection',
      '403 ACCESS_REFUSED channel',
      '404 NOT_FOUND channel',
      '405 RESOURCE_LOCKED channel',
      '406 PRECONDITION_FAILED channel',
      '501 FRAME_ERROR connection',
      '502 SYNTAX_ERROR connection',
      '503 COMMAND_INVALID connection',
      '504 CHANNEL_ERROR connection',
      '505 UNEXPECTED_FRAME connection',
      '506 RESOURCE_ERROR connection',
      '530 NOT_ALLOWED connection',
      '540 NOT_IMPLEMENTED connection',
      '541 INTERNAL_ERROR connection',
    ]);
    assert.equal(replyCodeInfo(999), undefined);
    assert.equal(isConnectionError(404), false);
    assert.equal(isConnectionError(530), true);
  });

  it('closes the channel for soft errors and the connection for hard ones, unless told otherwise', () => {
    const notFound = new AmqpProtocolError(ReplyCode.NotFound, "no queue 'q'", { classId: 50, methodId: 10 });
    assert.equal(notFound.scope, 'channel');
    assert.equal(notFound.closesConnection, false);
    assert.equal(notFound.replyText, "NOT_FOUND - no queue 'q'");
    assert.equal(new AmqpProtocolError(ReplyCode.FrameError, 'x').closesConnection, true);
    const refused = new AmqpProtocolError(ReplyCode.AccessRefused, 'login refused', { scope: 'connection' });
    assert.equal(refused.closesConnection, true);
    const located = new AmqpProtocolError(ReplyCode.SyntaxError, 'bad').withMethod(60, 40);
    assert.deepEqual([located.classId, located.methodId, located.replyCode], [60, 40, 502]);
  });

  it('keeps reply texts within a short string without splitting a character', () => {
    const text = new AmqpProtocolError(ReplyCode.PreconditionFailed, '\u00e9'.repeat(300)).replyText;
    assert.ok(Buffer.byteLength(text) <= 255);
    assert.ok(!text.includes('\ufffd'));
    assert.equal(truncateUtf8('abc', 2), 'ab');
    assert.equal(truncateUtf8('a\u00e9', 2), 'a');
  });

  it('carries the header to answer with when the protocol header is wrong', () => {
    const err = new ProtocolHeaderMismatchError(Buffer.from('GET '));
    assert.ok(err instanceof AmqpProtocolError);
    assert.deepEqual([...err.reply], [0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);
    assert.match(err.message, /47455420/);
  });
});
