/**
 * AMQP 0-9-1 primitive types on Buffers at explicit offsets (spec 4.2.5): octet, short, long,
 * longlong, shortstr, longstr, plus the signed and floating types field tables use. Readers return
 * the value and the bytes they used; writers return the bytes they wrote (amqp-client.js
 * AMQPView convention). Field tables are in field-table.ts, methods in methods.ts.
 *
 * Two cursors back the hot path: PayloadReader walks one frame payload and throws
 * AmqpProtocolError SYNTAX_ERROR when a value runs past the end; PayloadWriter appends to a
 * buffer (growing it, or refusing with AmqpEncodeError when it is a fixed caller's buffer).
 * Neither allocates per field except for the strings and tables it returns.
 */
import { AmqpEncodeError, AmqpProtocolError } from './errors.js';
import { ReplyCode } from './reply-codes.js';

/** A value read from a buffer and how many bytes it occupied there. */
export interface Read<T> {
  readonly value: T;
  readonly bytesUsed: number;
}

/** Short strings carry a 1-octet length (spec 4.2.5.3). */
export const MAX_SHORT_STRING_BYTES = 255;
const TWO_POW_32 = 4294967296;
/** ASCII strings up to this length are decoded in JS; longer ones go through Buffer#toString. */
const ASCII_FAST_PATH_MAX_BYTES = 24;

/**
 * Cursor over one payload [offsetBytes, endBytes). Every read checks the end first, so a
 * truncated payload becomes SYNTAX_ERROR instead of a RangeError or a read past the frame.
 * `classId`/`methodId` name the method being decoded so errors can say which one.
 */
export class PayloadReader {
  classId = 0;
  methodId = 0;
  /** Current nesting of field tables/arrays; field-table.ts bounds it. */
  depth = 0;

  constructor(
    readonly buf: Buffer,
    public offsetBytes: number,
    public endBytes: number,
  ) {}

  get remainingBytes(): number {
    return this.endBytes - this.offsetBytes;
  }

  /** A SYNTAX_ERROR about the method being decoded. */
  fail(message: string): AmqpProtocolError {
    return new AmqpProtocolError(ReplyCode.SyntaxError, message, { classId: this.classId, methodId: this.methodId });
  }

  need(bytes: number, what: string): void {
    if (this.endBytes - this.offsetBytes < bytes) {
      throw this.fail(`truncated ${what}: need ${bytes} bytes at ${this.offsetBytes}, have ${this.remainingBytes}`);
    }
  }

  /** Refuse bytes left over after the last argument (RabbitMQ matches method payloads exactly). */
  done(what: string): void {
    if (this.offsetBytes !== this.endBytes) throw this.fail(`${this.remainingBytes} unexpected bytes after ${what}`);
  }

  skip(bytes: number, what: string): void {
    this.need(bytes, what);
    this.offsetBytes += bytes;
  }

  u8(): number {
    this.need(1, 'octet');
    return this.buf[this.offsetBytes++] as number;
  }

  i8(): number {
    this.need(1, 'octet');
    return this.buf.readInt8(this.offsetBytes++);
  }

  u16(): number {
    this.need(2, 'short');
    const value = this.buf.readUInt16BE(this.offsetBytes);
    this.offsetBytes += 2;
    return value;
  }

  i16(): number {
    this.need(2, 'short');
    const value = this.buf.readInt16BE(this.offsetBytes);
    this.offsetBytes += 2;
    return value;
  }

  u32(): number {
    this.need(4, 'long');
    const value = this.buf.readUInt32BE(this.offsetBytes);
    this.offsetBytes += 4;
    return value;
  }

  i32(): number {
    this.need(4, 'long');
    const value = this.buf.readInt32BE(this.offsetBytes);
    this.offsetBytes += 4;
    return value;
  }

  /**
   * Unsigned 64 bits as a number, without BigInt. Values above 2^53 lose precision: they only
   * occur as delivery tags or body sizes no server hands out, which callers reject anyway.
   */
  u64(): number {
    this.need(8, 'longlong');
    const high = this.buf.readUInt32BE(this.offsetBytes);
    const low = this.buf.readUInt32BE(this.offsetBytes + 4);
    this.offsetBytes += 8;
    return high * TWO_POW_32 + low;
  }

  /** Signed 64 bits: a number when exact, a bigint outside ±(2^53 - 1). */
  i64(): number | bigint {
    this.need(8, 'longlong');
    const high = this.buf.readInt32BE(this.offsetBytes);
    const low = this.buf.readUInt32BE(this.offsetBytes + 4);
    const approx = high * TWO_POW_32 + low;
    const value = Number.isSafeInteger(approx) ? approx : this.buf.readBigInt64BE(this.offsetBytes);
    this.offsetBytes += 8;
    return value;
  }

  f32(): number {
    this.need(4, 'float');
    const value = this.buf.readFloatBE(this.offsetBytes);
    this.offsetBytes += 4;
    return value;
  }

  f64(): number {
    this.need(8, 'double');
    const value = this.buf.readDoubleBE(this.offsetBytes);
    this.offsetBytes += 8;
    return value;
  }

  /** shortstr: 1-octet length, UTF-8 bytes. */
  shortString(): string {
    this.need(1, 'short string length');
    const length = this.buf[this.offsetBytes] as number;
    this.offsetBytes += 1;
    this.need(length, 'short string');
    const start = this.offsetBytes;
    this.offsetBytes += length;
    return decodeUtf8(this.buf, start, start + length);
  }

  /** longstr as bytes: 4-octet length. The bytes are copied so they outlive the frame. */
  longStringBytes(): Buffer {
    const length = this.u32();
    this.need(length, 'long string');
    const start = this.offsetBytes;
    this.offsetBytes += length;
    return Buffer.from(this.buf.subarray(start, start + length));
  }

  /** longstr decoded as UTF-8. */
  longString(): string {
    const length = this.u32();
    this.need(length, 'long string');
    const start = this.offsetBytes;
    this.offsetBytes += length;
    return decodeUtf8(this.buf, start, start + length);
  }
}

/** UTF-8 slice; short pure-ASCII strings (exchange names, routing keys) skip the C++ call. */
function decodeUtf8(buf: Buffer, start: number, end: number): string {
  const length = end - start;
  if (length === 0) return '';
  if (length <= ASCII_FAST_PATH_MAX_BYTES) {
    let text = '';
    for (let i = start; i < end; i++) {
      const byte = buf[i] as number;
      if (byte >= 0x80) return buf.toString('utf8', start, end);
      text += String.fromCharCode(byte);
    }
    return text;
  }
  return buf.toString('utf8', start, end);
}

/**
 * Append-only cursor. A growable writer doubles its buffer as needed; a fixed one (wrapping a
 * caller's buffer) throws AmqpEncodeError when the value does not fit.
 */
export class PayloadWriter {
  buf: Buffer;
  offsetBytes: number;
  private readonly growable: boolean;

  constructor(buf: Buffer = Buffer.allocUnsafe(4096), offsetBytes = 0, growable = true) {
    this.buf = buf;
    this.offsetBytes = offsetBytes;
    this.growable = growable;
  }

  /** Make room for `bytes` more bytes. */
  ensure(bytes: number): void {
    const needed = this.offsetBytes + bytes;
    if (needed <= this.buf.length) return;
    if (!this.growable) {
      throw new AmqpEncodeError(`value needs ${needed} bytes, buffer holds ${this.buf.length}`);
    }
    let size = Math.max(this.buf.length * 2, 64);
    while (size < needed) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.offsetBytes);
    this.buf = grown;
  }

  u8(value: number): void {
    this.ensure(1);
    this.offsetBytes = this.buf.writeUInt8(value, this.offsetBytes);
  }

  i8(value: number): void {
    this.ensure(1);
    this.offsetBytes = this.buf.writeInt8(value, this.offsetBytes);
  }

  u16(value: number): void {
    this.ensure(2);
    this.offsetBytes = this.buf.writeUInt16BE(value, this.offsetBytes);
  }

  i16(value: number): void {
    this.ensure(2);
    this.offsetBytes = this.buf.writeInt16BE(value, this.offsetBytes);
  }

  u32(value: number): void {
    this.ensure(4);
    this.offsetBytes = this.buf.writeUInt32BE(value, this.offsetBytes);
  }

  i32(value: number): void {
    this.ensure(4);
    this.offsetBytes = this.buf.writeInt32BE(value, this.offsetBytes);
  }

  u64(value: number | bigint): void {
    this.ensure(8);
    this.offsetBytes += writeLongLong(this.buf, this.offsetBytes, value);
  }

  i64(value: number | bigint): void {
    this.ensure(8);
    this.offsetBytes = this.buf.writeBigInt64BE(BigInt(value), this.offsetBytes);
  }

  f32(value: number): void {
    this.ensure(4);
    this.offsetBytes = this.buf.writeFloatBE(value, this.offsetBytes);
  }

  f64(value: number): void {
    this.ensure(8);
    this.offsetBytes = this.buf.writeDoubleBE(value, this.offsetBytes);
  }

  /** `field` names the value in the error when it is over 255 bytes. */
  shortString(value: string, field = 'short string'): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit, so this always leaves enough room.
    if (this.growable && value.length <= MAX_SHORT_STRING_BYTES) this.ensure(1 + value.length * 3);
    this.offsetBytes += writeShortString(this.buf, this.offsetBytes, value, field);
  }

  longString(value: string | Uint8Array): void {
    const length = typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
    this.ensure(4 + length);
    this.offsetBytes += writeLongString(this.buf, this.offsetBytes, value);
  }

  bytes(value: Uint8Array): void {
    this.ensure(value.length);
    this.buf.set(value, this.offsetBytes);
    this.offsetBytes += value.length;
  }

  /** Skip `bytes` to fill in later (lengths); returns where they start. */
  reserve(bytes: number): number {
    this.ensure(bytes);
    const at = this.offsetBytes;
    this.offsetBytes += bytes;
    return at;
  }
}

function refuseRoom(buf: Buffer, offsetBytes: number, bytes: number, what: string): void {
  if (offsetBytes < 0 || buf.length - offsetBytes < bytes) {
    throw new AmqpEncodeError(`${what} needs ${bytes} bytes at ${offsetBytes}, buffer holds ${buf.length}`);
  }
}

/** Read an octet. */
export function readOctet(buf: Buffer, offsetBytes: number): Read<number> {
  const reader = new PayloadReader(buf, offsetBytes, buf.length);
  return { value: reader.u8(), bytesUsed: 1 };
}

/** Read a short (uint16 BE). */
export function readShort(buf: Buffer, offsetBytes: number): Read<number> {
  const reader = new PayloadReader(buf, offsetBytes, buf.length);
  return { value: reader.u16(), bytesUsed: 2 };
}

/** Read a long (uint32 BE). */
export function readLong(buf: Buffer, offsetBytes: number): Read<number> {
  const reader = new PayloadReader(buf, offsetBytes, buf.length);
  return { value: reader.u32(), bytesUsed: 4 };
}

/** Read a longlong (uint64 BE) as a number (see PayloadReader.u64 on precision). */
export function readLongLong(buf: Buffer, offsetBytes: number): Read<number> {
  const reader = new PayloadReader(buf, offsetBytes, buf.length);
  return { value: reader.u64(), bytesUsed: 8 };
}

/** Read a shortstr. */
export function readShortString(buf: Buffer, offsetBytes: number): Read<string> {
  const reader = new PayloadReader(buf, offsetBytes, buf.length);
  const value = reader.shortString();
  return { value, bytesUsed: reader.offsetBytes - offsetBytes };
}

/** Read a longstr as UTF-8 text. */
export function readLongString(buf: Buffer, offsetBytes: number): Read<string> {
  const reader = new PayloadReader(buf, offsetBytes, buf.length);
  const value = reader.longString();
  return { value, bytesUsed: reader.offsetBytes - offsetBytes };
}

/** Read a longstr as bytes (copied). */
export function readLongStringBytes(buf: Buffer, offsetBytes: number): Read<Buffer> {
  const reader = new PayloadReader(buf, offsetBytes, buf.length);
  const value = reader.longStringBytes();
  return { value, bytesUsed: reader.offsetBytes - offsetBytes };
}

/** Write an octet; returns 1. */
export function writeOctet(buf: Buffer, offsetBytes: number, value: number): number {
  refuseRoom(buf, offsetBytes, 1, 'octet');
  buf.writeUInt8(value, offsetBytes);
  return 1;
}

/** Write a short (uint16 BE); returns 2. */
export function writeShort(buf: Buffer, offsetBytes: number, value: number): number {
  refuseRoom(buf, offsetBytes, 2, 'short');
  buf.writeUInt16BE(value, offsetBytes);
  return 2;
}

/** Write a long (uint32 BE); returns 4. */
export function writeLong(buf: Buffer, offsetBytes: number, value: number): number {
  refuseRoom(buf, offsetBytes, 4, 'long');
  buf.writeUInt32BE(value, offsetBytes);
  return 4;
}

/** Write a longlong (uint64 BE) from a non-negative integer number or bigint; returns 8. */
export function writeLongLong(buf: Buffer, offsetBytes: number, value: number | bigint): number {
  refuseRoom(buf, offsetBytes, 8, 'longlong');
  if (typeof value === 'bigint') {
    buf.writeBigUInt64BE(value, offsetBytes);
    return 8;
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new AmqpEncodeError(`longlong must be a non-negative safe integer, got ${value}`);
  }
  buf.writeUInt32BE(Math.floor(value / TWO_POW_32), offsetBytes);
  buf.writeUInt32BE(value % TWO_POW_32, offsetBytes + 4);
  return 8;
}

/**
 * Write a shortstr (UTF-8, 1-octet length); returns the bytes written. Refuses a value over 255
 * bytes with AmqpEncodeError naming `field`, rather than truncating it.
 */
export function writeShortString(buf: Buffer, offsetBytes: number, value: string, field = 'short string'): number {
  // UTF-8 never takes fewer bytes than UTF-16 units, so a long JS string is refused up front.
  if (value.length > MAX_SHORT_STRING_BYTES) throw shortStringTooLong(field, Buffer.byteLength(value, 'utf8'));
  const room = buf.length - offsetBytes - 1;
  let length: number;
  if (value.length <= 8 && room >= value.length) {
    length = writeAsciiOrUtf8(buf, offsetBytes + 1, value);
  } else if (room >= value.length * 3) {
    length = buf.write(value, offsetBytes + 1, 'utf8');
  } else {
    length = Buffer.byteLength(value, 'utf8');
    refuseRoom(buf, offsetBytes, 1 + length, 'short string');
    buf.write(value, offsetBytes + 1, length, 'utf8');
  }
  if (length > MAX_SHORT_STRING_BYTES) throw shortStringTooLong(field, length);
  buf[offsetBytes] = length;
  return 1 + length;
}

/** Tiny strings are written byte by byte when ASCII; returns bytes written. */
function writeAsciiOrUtf8(buf: Buffer, offsetBytes: number, value: string): number {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code >= 0x80) {
      const length = Buffer.byteLength(value, 'utf8');
      refuseRoom(buf, offsetBytes, length, 'short string');
      return buf.write(value, offsetBytes, length, 'utf8');
    }
    buf[offsetBytes + i] = code;
  }
  return value.length;
}

function shortStringTooLong(field: string, bytes: number): AmqpEncodeError {
  return new AmqpEncodeError(`${field} is ${bytes} bytes; a short string holds at most ${MAX_SHORT_STRING_BYTES}`);
}

/** Write a longstr (4-octet length) from text (UTF-8) or bytes; returns the bytes written. */
export function writeLongString(buf: Buffer, offsetBytes: number, value: string | Uint8Array): number {
  if (typeof value === 'string') {
    const length = Buffer.byteLength(value, 'utf8');
    refuseRoom(buf, offsetBytes, 4 + length, 'long string');
    buf.writeUInt32BE(length, offsetBytes);
    buf.write(value, offsetBytes + 4, length, 'utf8');
    return 4 + length;
  }
  refuseRoom(buf, offsetBytes, 4 + value.length, 'long string');
  buf.writeUInt32BE(value.length, offsetBytes);
  buf.set(value, offsetBytes + 4);
  return 4 + value.length;
}
