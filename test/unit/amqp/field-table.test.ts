import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PayloadWriter } from '../../../src/adapters/amqp/codec.js';
import { AmqpEncodeError, AmqpProtocolError } from '../../../src/adapters/amqp/errors.js';
import {
  encodeFieldTable,
  FieldDecimal,
  FieldTyped,
  MAX_FIELD_NESTING_DEPTH,
  readFieldArray,
  readFieldTable,
  writeFieldArray,
  writeFieldTable,
  writeTable,
  type FieldTable,
} from '../../../src/adapters/amqp/field-table.js';
import { ReplyCode } from '../../../src/adapters/amqp/reply-codes.js';
import {
  amqplibCodec,
  fromAmqplibValue,
  sampleTable,
  sampleTableDecoded,
  toAmqplibValue,
} from './amqplib-reference.js';

/** A table of one entry: key "k", the tag octet, then `value` bytes. */
function oneEntryTable(tag: string, value: number[]): Buffer {
  const entry = Buffer.from([1, 0x6b, tag.charCodeAt(0), ...value]);
  const out = Buffer.alloc(4 + entry.length);
  out.writeUInt32BE(entry.length, 0);
  entry.copy(out, 4);
  return out;
}

function assertSyntaxError(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AmqpProtocolError, `expected AmqpProtocolError, got ${String(err)}`);
    assert.equal(err.replyCode, ReplyCode.SyntaxError);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  });
}

describe('AMQP field tables', () => {
  it('round-trips every field type and reports the bytes it used', () => {
    const encoded = encodeFieldTable(sampleTable());
    const padded = Buffer.concat([Buffer.from([9, 9, 9]), encoded, Buffer.from([7])]);
    const read = readFieldTable(padded, 3);
    assert.equal(read.bytesUsed, encoded.length);
    assert.deepEqual(read.value, sampleTableDecoded());
  });

  it('decodes each RabbitMQ type tag with its errata meaning', () => {
    const cases: [string, number[], unknown][] = [
      ['t', [1], true],
      ['b', [0xff], -1],
      ['B', [0xff], 255],
      ['s', [0xff, 0xfe], -2],
      ['u', [0xff, 0xfe], 65534],
      ['I', [0xff, 0xff, 0xff, 0xfd], -3],
      ['i', [0xff, 0xff, 0xff, 0xfd], 4294967293],
      ['l', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc], -4],
      ['l', [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 2n ** 63n - 1n],
      ['f', [0x3f, 0xc0, 0, 0], 1.5],
      ['d', [0x40, 0x04, 0, 0, 0, 0, 0, 0], 2.5],
      ['D', [2, 0, 0, 0x30, 0x39], new FieldDecimal(2, 12345)],
      ['S', [0, 0, 0, 2, 0x68, 0x69], 'hi'],
      ['x', [0, 0, 0, 2, 0x00, 0xff], Buffer.from([0, 255])],
      ['T', [0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00], new FieldTyped('T', 0x6553f100)],
      ['A', [0, 0, 0, 2, 0x74, 0], [false]],
      ['F', [0, 0, 0, 0], {}],
      ['V', [], null],
    ];
    for (const [tag, bytes, expected] of cases) {
      assert.deepEqual(readFieldTable(oneEntryTable(tag, bytes), 0).value, { k: expected }, `tag ${tag}`);
    }
  });

  it('encodes tables that amqplib decodes to the same values', () => {
    const decoded = amqplibCodec.decodeFields(encodeFieldTable(sampleTable()).subarray(4));
    assert.deepEqual(fromAmqplibValue(decoded), sampleTableDecoded());
  });

  it('decodes tables amqplib encodes to the same values', () => {
    const buffer = Buffer.alloc(4096);
    const length = amqplibCodec.encodeTable(buffer, toAmqplibValue(sampleTable()) as Record<string, unknown>, 0);
    const read = readFieldTable(buffer, 0);
    assert.equal(read.bytesUsed, length);
    assert.deepEqual(read.value, sampleTableDecoded());
  });

  it('writes explicitly typed numbers with the tag asked for', () => {
    const tags: [FieldTyped, number[]][] = [
      [new FieldTyped('b', -1), [0x62, 0xff]],
      [new FieldTyped('B', 255), [0x42, 0xff]],
      [new FieldTyped('s', -2), [0x73, 0xff, 0xfe]],
      [new FieldTyped('u', 65534), [0x75, 0xff, 0xfe]],
      [new FieldTyped('I', -3), [0x49, 0xff, 0xff, 0xff, 0xfd]],
      [new FieldTyped('i', 4294967293), [0x69, 0xff, 0xff, 0xff, 0xfd]],
      [new FieldTyped('l', -4n), [0x6c, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc]],
    ];
    for (const [value, bytes] of tags) {
      const buffer = Buffer.alloc(32);
      const written = writeFieldArray(buffer, 0, [value]);
      assert.deepEqual([...buffer.subarray(4, written)], bytes, value.type);
    }
  });

  it('infers int32, int64 and double for plain numbers', () => {
    const buffer = Buffer.alloc(64);
    const written = writeFieldArray(buffer, 0, [7, 2 ** 40, 0.5, 10n]);
    const tags = [buffer[4], buffer[9], buffer[18], buffer[27]].map((code) => String.fromCharCode(code ?? 0));
    assert.deepEqual(tags, ['I', 'l', 'd', 'l']);
    assert.deepEqual(readFieldArray(buffer, 0), { value: [7, 2 ** 40, 0.5, 10], bytesUsed: written });
  });

  it('refuses a table with an unknown type tag', () => {
    assertSyntaxError(() => readFieldTable(oneEntryTable('Z', [0]), 0), /unknown field type tag 0x5a/);
    assertSyntaxError(() => readFieldArray(Buffer.from([0, 0, 0, 1, 0x55]), 0), /unknown field type tag/);
  });

  it('refuses a table whose length runs past the buffer or whose values run past its length', () => {
    assertSyntaxError(() => readFieldTable(Buffer.from([0, 0, 0, 9, 1, 0x6b]), 0), /truncated/);
    // Declared length 4 covers key "k" and the tag, but the int32 value needs 4 more bytes.
    assertSyntaxError(() => readFieldTable(Buffer.from([0, 0, 0, 3, 1, 0x6b, 0x49, 0, 0, 0, 1]), 0), /truncated/);
    assertSyntaxError(() => readFieldTable(Buffer.from([0, 0]), 0), /truncated/);
  });

  it(`refuses tables nested deeper than ${MAX_FIELD_NESTING_DEPTH} levels instead of overflowing the stack`, () => {
    const levels = 100000;
    // Build F-in-F-in-F... from the inside out: each level is key "" + 'F' + length.
    const buffer = Buffer.alloc(4 + levels * 6);
    let inner = 0;
    for (let level = levels - 1; level >= 0; level--) {
      const at = 4 + level * 6;
      buffer[at] = 0;
      buffer[at + 1] = 0x46;
      buffer.writeUInt32BE(inner, at + 2);
      inner += 6;
    }
    buffer.writeUInt32BE(inner, 0);
    assertSyntaxError(() => readFieldTable(buffer, 0), /nested deeper/);
    let deep: FieldTable = {};
    for (let level = 0; level < 200; level++) deep = { d: deep };
    assert.throws(() => encodeFieldTable(deep), AmqpEncodeError);
  });

  it('keeps a "__proto__" key as data rather than a prototype', () => {
    const key = Buffer.from('__proto__');
    const entry = Buffer.concat([Buffer.from([key.length]), key, Buffer.from([0x74, 1])]);
    const table = Buffer.concat([Buffer.from([0, 0, 0, entry.length]), entry]);
    const value = readFieldTable(table, 0).value;
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.deepEqual(Object.keys(value), ['__proto__']);
    assert.equal(Object.getOwnPropertyDescriptor(value, '__proto__')?.value, true);
  });

  it('refuses keys over 255 bytes and values it cannot encode', () => {
    assert.throws(() => encodeFieldTable({ ['k'.repeat(256)]: 1 }), AmqpEncodeError);
    assert.throws(() => encodeFieldTable({ f: (() => 1) as unknown as string }), AmqpEncodeError);
    assert.throws(() => encodeFieldTable({ s: Symbol('x') as unknown as string }), AmqpEncodeError);
    assert.throws(() => encodeFieldTable({ b: new FieldTyped('B', 256) }), AmqpEncodeError);
    assert.throws(() => encodeFieldTable({ l: 2n ** 63n }), AmqpEncodeError);
    assert.throws(() => encodeFieldTable({ d: new FieldDecimal(256, 1) }), AmqpEncodeError);
  });

  it('skips undefined table values and writes a Date as a timestamp in seconds', () => {
    const read = readFieldTable(encodeFieldTable({ gone: undefined, at: new Date(1700000000999) }), 0);
    assert.deepEqual(read.value, { at: new FieldTyped('T', 1700000000) });
  });

  it('refuses to write past the end of a fixed buffer', () => {
    const buffer = Buffer.alloc(10);
    assert.throws(() => writeFieldTable(buffer, 0, { key: 'a value longer than the buffer' }), AmqpEncodeError);
    assert.equal(writeFieldTable(buffer, 6, {}), 4);
  });

  it('writes through a growing writer without losing earlier bytes', () => {
    const writer = new PayloadWriter(Buffer.alloc(8));
    writer.u8(0xab);
    const big: FieldTable = { blob: Buffer.alloc(5000, 7), text: 'x'.repeat(3000) };
    writeTable(writer, big);
    assert.ok(writer.buf.length >= writer.offsetBytes);
    assert.deepEqual(readFieldTable(writer.buf.subarray(0, writer.offsetBytes), 1).value, big);
    assert.equal(writer.buf[0], 0xab);
  });
});
