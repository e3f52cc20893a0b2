/**
 * AMQP field tables and field arrays with RabbitMQ's type tags (the 0-9-1 errata, which every
 * client follows instead of the spec's own list):
 *
 *   t bool      b int8     B uint8    s int16    u uint16   I int32    i uint32   l int64
 *   f float32   d float64  D decimal (scale octet + uint32)   S longstr   x byte array (longstr)
 *   T timestamp (uint64 seconds)      F nested table          A array     V void
 *
 * Table = uint32 byte length, then (shortstr key, tag octet, value)*. Array = uint32 byte length,
 * then (tag octet, value)*. Decoding maps values to plain JS (numbers, strings, booleans, null,
 * Buffers, arrays, objects); timestamps and decimals, which have no JS twin, come back as
 * FieldTyped/FieldDecimal. Encoding infers a tag from the JS value, and FieldTyped picks one.
 */
import { PayloadReader, PayloadWriter, type Read } from './codec.js';
import { AmqpEncodeError } from './errors.js';

/** Nesting bound: a hostile table nested 20k levels deep would otherwise overflow the stack. */
export const MAX_FIELD_NESTING_DEPTH = 64;

/** Tags that FieldTyped can force for a number. */
export type FieldNumberTag = 'b' | 'B' | 's' | 'u' | 'I' | 'i' | 'l' | 'f' | 'd' | 'T';

/** A number with an explicit wire type; decoded timestamps ('T', seconds) come back as one. */
export class FieldTyped {
  constructor(
    readonly type: FieldNumberTag,
    readonly value: number | bigint,
  ) {}
}

/** AMQP decimal: value / 10^scale, with an unsigned 32-bit value as RabbitMQ and amqplib use. */
export class FieldDecimal {
  constructor(
    readonly scale: number,
    readonly value: number,
  ) {}
}

export type FieldValue =
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | Uint8Array
  | null
  | undefined
  | Date
  | FieldTyped
  | FieldDecimal
  | readonly FieldValue[]
  | FieldTable;

/** Keys with an `undefined` value are left out when encoding. */
export interface FieldTable {
  [key: string]: FieldValue;
}

const TAG_T = 0x74; // t
const TAG_b = 0x62;
const TAG_B = 0x42;
const TAG_s = 0x73;
const TAG_u = 0x75;
const TAG_I = 0x49;
const TAG_i = 0x69;
const TAG_l = 0x6c;
const TAG_f = 0x66;
const TAG_d = 0x64;
const TAG_D = 0x44;
const TAG_S = 0x53;
const TAG_x = 0x78;
const TAG_TS = 0x54; // T
const TAG_F = 0x46;
const TAG_A = 0x41;
const TAG_V = 0x56;

/** Read a field table at the reader's position (uint32 length, then entries). */
export function readTable(reader: PayloadReader): FieldTable {
  const length = reader.u32();
  reader.need(length, 'field table');
  const table: FieldTable = {};
  if (length === 0) return table;
  const outerEnd = reader.endBytes;
  const end = reader.offsetBytes + length;
  enterNesting(reader);
  // Values may not run past the table's own length, so the reader's end moves in for a while.
  reader.endBytes = end;
  while (reader.offsetBytes < end) {
    const key = reader.shortString();
    const value = readValue(reader);
    if (key === '__proto__') {
      // A plain assignment would replace the object's prototype instead of adding a key.
      Object.defineProperty(table, key, { value, enumerable: true, writable: true, configurable: true });
    } else {
      table[key] = value;
    }
  }
  reader.endBytes = outerEnd;
  reader.depth--;
  return table;
}

/** Read a field array at the reader's position. */
export function readArray(reader: PayloadReader): FieldValue[] {
  const length = reader.u32();
  reader.need(length, 'field array');
  const values: FieldValue[] = [];
  if (length === 0) return values;
  const outerEnd = reader.endBytes;
  const end = reader.offsetBytes + length;
  enterNesting(reader);
  reader.endBytes = end;
  while (reader.offsetBytes < end) values.push(readValue(reader));
  reader.endBytes = outerEnd;
  reader.depth--;
  return values;
}

function enterNesting(reader: PayloadReader): void {
  if (reader.depth >= MAX_FIELD_NESTING_DEPTH) {
    throw reader.fail(`field tables nested deeper than ${MAX_FIELD_NESTING_DEPTH}`);
  }
  reader.depth++;
}

function readValue(reader: PayloadReader): FieldValue {
  const tag = reader.u8();
  switch (tag) {
    case TAG_S:
      return reader.longString();
    case TAG_I:
      return reader.i32();
    case TAG_T:
      return reader.u8() !== 0;
    case TAG_l:
      return reader.i64();
    case TAG_F:
      return readTable(reader);
    case TAG_A:
      return readArray(reader);
    case TAG_b:
      return reader.i8();
    case TAG_B:
      return reader.u8();
    case TAG_s:
      return reader.i16();
    case TAG_u:
      return reader.u16();
    case TAG_i:
      return reader.u32();
    case TAG_f:
      return reader.f32();
    case TAG_d:
      return reader.f64();
    case TAG_D: {
      const scale = reader.u8();
      return new FieldDecimal(scale, reader.u32());
    }
    case TAG_TS:
      return new FieldTyped('T', reader.u64());
    case TAG_V:
      return null;
    case TAG_x:
      return reader.longStringBytes();
    default:
      throw reader.fail(`unknown field type tag 0x${tag.toString(16)} at ${reader.offsetBytes - 1}`);
  }
}

/** Write a field table (uint32 length, then entries) at the writer's position. */
export function writeTable(writer: PayloadWriter, table: FieldTable, depth = 0): void {
  if (depth >= MAX_FIELD_NESTING_DEPTH) throw new AmqpEncodeError(`field table nested deeper than ${depth}`);
  const lengthAt = writer.reserve(4);
  for (const key in table) {
    if (!Object.hasOwn(table, key)) continue;
    const value = table[key];
    if (value === undefined) continue;
    writer.shortString(key, `field table key "${key.slice(0, 32)}"`);
    writeValue(writer, value, depth);
  }
  writer.buf.writeUInt32BE(writer.offsetBytes - lengthAt - 4, lengthAt);
}

/** Write a field array at the writer's position; `undefined` elements become void. */
export function writeArray(writer: PayloadWriter, values: readonly FieldValue[], depth = 0): void {
  if (depth >= MAX_FIELD_NESTING_DEPTH) throw new AmqpEncodeError(`field array nested deeper than ${depth}`);
  const lengthAt = writer.reserve(4);
  for (const value of values) writeValue(writer, value, depth);
  writer.buf.writeUInt32BE(writer.offsetBytes - lengthAt - 4, lengthAt);
}

function writeValue(writer: PayloadWriter, value: FieldValue, depth: number): void {
  switch (typeof value) {
    case 'string':
      writer.u8(TAG_S);
      writer.longString(value);
      return;
    case 'boolean':
      writer.u8(TAG_T);
      writer.u8(value ? 1 : 0);
      return;
    case 'number':
      // Integers go as signed 32 or 64 bits (what RabbitMQ's own arguments use), the rest as double.
      if (Number.isSafeInteger(value)) {
        if (value >= -0x80000000 && value <= 0x7fffffff) {
          writer.u8(TAG_I);
          writer.i32(value);
        } else {
          writer.u8(TAG_l);
          writer.i64(value);
        }
      } else {
        writer.u8(TAG_d);
        writer.f64(value);
      }
      return;
    case 'bigint':
      writer.u8(TAG_l);
      writeTypedNumber(writer, 'l', value);
      return;
    case 'undefined':
      writer.u8(TAG_V);
      return;
    case 'object':
      writeObjectValue(writer, value, depth);
      return;
    default:
      throw new AmqpEncodeError(`cannot encode a ${typeof value} in a field table`);
  }
}

function writeObjectValue(writer: PayloadWriter, value: object | null, depth: number): void {
  if (value === null) {
    writer.u8(TAG_V);
  } else if (value instanceof Uint8Array) {
    writer.u8(TAG_x);
    writer.longString(value);
  } else if (Array.isArray(value)) {
    writer.u8(TAG_A);
    writeArray(writer, value as readonly FieldValue[], depth + 1);
  } else if (value instanceof FieldTyped) {
    writer.u8(value.type.charCodeAt(0));
    writeTypedNumber(writer, value.type, value.value);
  } else if (value instanceof FieldDecimal) {
    checkInteger(value.scale, 0, 0xff, 'decimal scale');
    checkInteger(value.value, 0, 0xffffffff, 'decimal value');
    writer.u8(TAG_D);
    writer.u8(value.scale);
    writer.u32(value.value);
  } else if (value instanceof Date) {
    const timeMs = value.getTime();
    if (!Number.isFinite(timeMs) || timeMs < 0) throw new AmqpEncodeError(`cannot encode date ${String(value)}`);
    writer.u8(TAG_TS);
    writer.u64(Math.floor(timeMs / 1000));
  } else {
    writer.u8(TAG_F);
    writeTable(writer, value as FieldTable, depth + 1);
  }
}

const INTEGER_RANGES: Partial<Record<FieldNumberTag, readonly [number, number]>> = {
  b: [-0x80, 0x7f],
  B: [0, 0xff],
  s: [-0x8000, 0x7fff],
  u: [0, 0xffff],
  I: [-0x80000000, 0x7fffffff],
  i: [0, 0xffffffff],
};

function writeTypedNumber(writer: PayloadWriter, type: FieldNumberTag, value: number | bigint): void {
  if (type === 'l' || type === 'T') {
    const big = typeof value === 'bigint' ? value : Number.isSafeInteger(value) ? BigInt(value) : undefined;
    const [min, max] = type === 'l' ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
    if (big === undefined || big < min || big > max)
      throw new AmqpEncodeError(`value ${value} out of range for '${type}'`);
    if (type === 'l') writer.i64(big);
    else writer.u64(big);
    return;
  }
  const number = Number(value);
  if (type === 'f') return writer.f32(number);
  if (type === 'd') return writer.f64(number);
  const range = INTEGER_RANGES[type];
  if (range === undefined) throw new AmqpEncodeError(`unknown field type '${type}'`);
  checkInteger(number, range[0], range[1], `'${type}' field`);
  switch (type) {
    case 'b':
      return writer.i8(number);
    case 'B':
      return writer.u8(number);
    case 's':
      return writer.i16(number);
    case 'u':
      return writer.u16(number);
    case 'I':
      return writer.i32(number);
    default:
      return writer.u32(number);
  }
}

function checkInteger(value: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new AmqpEncodeError(`${what} must be an integer in [${min}, ${max}], got ${value}`);
  }
}

/** Read a field table at `offsetBytes`; SYNTAX_ERROR when it is truncated or malformed. */
export function readFieldTable(buf: Buffer, offsetBytes: number): Read<FieldTable> {
  const reader = new PayloadReader(buf, offsetBytes, buf.length);
  const value = readTable(reader);
  return { value, bytesUsed: reader.offsetBytes - offsetBytes };
}

/** Read a field array at `offsetBytes`. */
export function readFieldArray(buf: Buffer, offsetBytes: number): Read<FieldValue[]> {
  const reader = new PayloadReader(buf, offsetBytes, buf.length);
  const value = readArray(reader);
  return { value, bytesUsed: reader.offsetBytes - offsetBytes };
}

/** Write a field table into `buf` at `offsetBytes`; returns bytes written, AmqpEncodeError if it does not fit. */
export function writeFieldTable(buf: Buffer, offsetBytes: number, table: FieldTable): number {
  const writer = new PayloadWriter(buf, offsetBytes, false);
  writeTable(writer, table);
  return writer.offsetBytes - offsetBytes;
}

/** Write a field array into `buf` at `offsetBytes`; returns bytes written. */
export function writeFieldArray(buf: Buffer, offsetBytes: number, values: readonly FieldValue[]): number {
  const writer = new PayloadWriter(buf, offsetBytes, false);
  writeArray(writer, values);
  return writer.offsetBytes - offsetBytes;
}

/** A field table as a new Buffer (length prefix included). */
export function encodeFieldTable(table: FieldTable): Buffer {
  const writer = new PayloadWriter(Buffer.allocUnsafe(256));
  writeTable(writer, table);
  return Buffer.from(writer.buf.subarray(0, writer.offsetBytes));
}
