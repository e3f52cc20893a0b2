import { crc32 } from 'node:zlib';
import { invariant } from './assert.js';
import { ErrorCode, RbError } from './errors.js';
import { isIPv6Host, readIpBytes, writeIpBytes } from './host-address.js';
import { PROPERTIES_MAX_BYTES } from './limits.js';
import { type HostAddress, MessageSysFlag, type MessageToStore, type StoredMessage } from './message.js';
import {
  decodeProperties,
  MessageProperty,
  NAME_VALUE_SEPARATOR,
  type Properties,
  PROPERTY_SEPARATOR,
} from './properties.js';

/**
 * The stored message record, RocketMQ's MessageExt layout (CommitLog.DefaultAppendMessageCallback),
 * all integers big-endian. A pull returns these bytes unchanged.
 *
 *   totalSize 4 | magic 4 | bodyCRC 4 | queueId 4 | flag 4 | queueOffset 8 | physicalOffset 8
 *   | sysFlag 4 | bornTimestamp 8 | bornHost 8 (ip 4 + port 4; 20 with BornHostV6)
 *   | storeTimestamp 8 | storeHost 8 (20 with StoreHostV6) | reconsumeTimes 4
 *   | preparedTransactionOffset 8 | bodyLength 4 + body | topicLength 1 + topic
 *   | propertiesLength 2 + properties
 *
 * bodyCRC is CRC-32 of the body masked to 31 bits (UtilAll.crc32). The store also appends RocketMQ 5's
 * `__CRC32#` property as the last property: ten decimal digits of the CRC-32 of every record byte
 * before those digits, so that a flipped bit anywhere in the record is caught on recovery.
 *
 * A segment ends with a blank record when the next one does not fit: totalSize (the bytes left in
 * the segment) and BLANK_MAGIC_CODE, then nothing the reader needs.
 */
export const MESSAGE_MAGIC_CODE = 0xdaa320a7 | 0;
export const BLANK_MAGIC_CODE = 0xcbd43194 | 0;
/** A blank record needs its size and magic: 8 bytes. */
export const BLANK_RECORD_MIN_BYTES = 8;

const RECORD_CRC_DIGITS = 10;
const RECORD_CRC_PROPERTY_PREFIX = MessageProperty.RecordCrc32 + '\u0001';
/** `__CRC32#` + \u0001 + 10 digits + \u0002. */
const RECORD_CRC_PROPERTY_BYTES = RECORD_CRC_PROPERTY_PREFIX.length + RECORD_CRC_DIGITS + 1;

export const Field = {
  TotalSize: 0,
  Magic: 4,
  BodyCrc: 8,
  QueueId: 12,
  Flag: 16,
  QueueOffset: 20,
  PhysicalOffset: 28,
  SysFlag: 36,
  BornTimestamp: 40,
  BornHost: 48,
} as const;

export function bodyCrcOf(body: Uint8Array): number {
  return crc32(body) & 0x7fffffff;
}

/*
 * CRC-32 combination (zlib's crc32_combine): crc(A + B) from crc(A), crc(B) and B's length, so that
 * the record CRC can reuse the body's CRC instead of reading a large body a second time. Appending
 * n bytes multiplies crc(A) by x^(8n) modulo the CRC polynomial; that is a linear map on 32 bits,
 * applied with one 4 x 256 table per power of two in n (built on first use, 4 KiB each).
 */
const CRC32_POLYNOMIAL = 0xedb88320;
/** Below this body size a second pass over the body costs less than the combination. */
const CRC_COMBINE_MIN_BODY_BYTES = 2048;
const crcShiftTables: Int32Array[] = [];

/** a * b modulo the CRC polynomial, both in zlib's reflected bit order. */
function multiplyModP(a: number, b: number): number {
  let product = 0;
  let factor = b;
  for (let bit = 0x80000000; bit !== 0; bit >>>= 1) {
    if (a & bit) product ^= factor;
    factor = factor & 1 ? (factor >>> 1) ^ CRC32_POLYNOMIAL : factor >>> 1;
  }
  return product >>> 0;
}

/** The table that multiplies a CRC by x^(8 * 2^k): appending 2^k zero bytes. */
function crcShiftTable(k: number): Int32Array {
  let table = crcShiftTables[k];
  if (table !== undefined) return table;
  let power = 0x40000000; // x^1
  for (let i = 0; i < k + 3; i++) power = multiplyModP(power, power);
  table = new Int32Array(1024);
  for (let i = 0; i < 4; i++) {
    for (let value = 0; value < 256; value++) table[i * 256 + value] = multiplyModP(power, (value << (8 * i)) >>> 0);
  }
  crcShiftTables[k] = table;
  return table;
}

/** crc32 of A followed by B, from crc32(A), crc32(B) and B's length in bytes. */
function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  let crc = crcA;
  for (let k = 0, rest = lengthB; rest !== 0; k++, rest = Math.floor(rest / 2)) {
    if (rest % 2 === 0) continue;
    const t = crcShiftTable(k);
    crc =
      (t[crc & 255] ?? 0) ^
      (t[256 + ((crc >>> 8) & 255)] ?? 0) ^
      (t[512 + ((crc >>> 16) & 255)] ?? 0) ^
      (t[768 + (crc >>> 24)] ?? 0);
  }
  return (crc ^ crcB) >>> 0;
}

/** What the store fills in when it appends a record. */
export interface RecordPlacement {
  queueOffset: number;
  commitLogOffset: number;
  storeTimestamp: number;
  storeHost: HostAddress;
}

/**
 * A message prepared for encoding: checked, and its variable parts measured once. The message must
 * not change until writeRecord has written it (the store does both in one synchronous append).
 */
export interface PreparedRecord {
  readonly message: MessageToStore;
  /** UTF-8 topic, shared between records of the topic: never modified. */
  readonly topicBytes: Buffer;
  /** The message's property names, in order; a stale record CRC among them is not written. */
  readonly propertyNames: readonly string[];
  /** UTF-8 length of the message's properties encoded, without the record CRC property the store appends. */
  readonly propertiesTextBytes: number;
  /** Every property name and value is ASCII: one byte per character. */
  readonly propertiesAscii: boolean;
  /** CRC-32 of the body, and masked to 31 bits as the record stores it. */
  readonly bodyCrc32: number;
  readonly bodyCrc: number;
  readonly sysFlag: number;
  readonly totalSize: number;
}

/**
 * Topic bytes of the topics seen lately (the same few topics recur on every append). Bounded:
 * cleared when full.
 */
const topicBytesCache = new Map<string, Buffer>();
const TOPIC_BYTES_CACHE_LIMIT = 10_000;

function topicBytesOf(topic: string): Buffer {
  let bytes = topicBytesCache.get(topic);
  if (bytes === undefined) {
    bytes = Buffer.from(topic, 'utf8');
    if (topicBytesCache.size >= TOPIC_BYTES_CACHE_LIMIT) topicBytesCache.clear();
    topicBytesCache.set(topic, bytes);
  }
  return bytes;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_LIMIT = 2 ** 63;

function isInt32(value: number): boolean {
  return Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX;
}

function isInt64(value: number): boolean {
  return Number.isInteger(value) && value >= -INT64_LIMIT && value < INT64_LIMIT;
}

function illegal(what: string, value: unknown): RbError {
  return new RbError(ErrorCode.MessageIllegal, `${what} ${String(value)} does not fit its record field`);
}

/** UTF-8 length of `text` as Buffer#write encodes it (a lone surrogate becomes U+FFFD, 3 bytes). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/**
 * Checks the message and measures topic and properties. Throws RbError for a message that cannot be
 * stored (the caller's fault), never for a store problem. Every field writeRecord writes is checked
 * here, so that writing a prepared record cannot fail halfway through a batch.
 */
export function prepareRecord(message: MessageToStore, storeHostIsV6: boolean): PreparedRecord {
  const topicBytes = topicBytesOf(message.topic);
  if (topicBytes.length === 0 || topicBytes.length > 127) {
    throw new RbError(ErrorCode.TopicInvalid, `topic must be 1 to 127 bytes, got ${topicBytes.length}`);
  }
  if (!isInt32(message.queueId)) throw illegal('queue id', message.queueId);
  if (!isInt32(message.reconsumeTimes)) throw illegal('reconsume times', message.reconsumeTimes);
  if (!isInt32(message.bornHost.port)) throw illegal('born host port', message.bornHost.port);
  if (!isInt64(message.bornTimestamp)) throw illegal('born timestamp', message.bornTimestamp);
  if (!isInt64(message.preparedTransactionOffset)) {
    throw illegal('prepared transaction offset', message.preparedTransactionOffset);
  }
  // The properties are measured here and written in place by writeRecord, as encodeProperties would
  // build them (every one but a stale record CRC, which the store appends anew): no properties string
  // is ever built on the append path.
  const propertyNames = Object.keys(message.properties);
  let propertiesTextBytes = 0;
  let propertiesChars = 0;
  for (const name of propertyNames) {
    if (name === MessageProperty.RecordCrc32) continue;
    const value = String(message.properties[name]);
    propertiesTextBytes += utf8Length(name) + utf8Length(value) + 2;
    propertiesChars += name.length + value.length + 2;
  }
  const propertiesAscii = propertiesTextBytes === propertiesChars;
  const propertiesBytes = propertiesTextBytes + RECORD_CRC_PROPERTY_BYTES;
  if (propertiesBytes > PROPERTIES_MAX_BYTES) {
    throw new RbError(
      ErrorCode.PropertiesTooLarge,
      `properties take ${propertiesBytes} bytes, more than ${PROPERTIES_MAX_BYTES}`,
    );
  }
  let sysFlag = message.sysFlag & ~(MessageSysFlag.BornHostV6 | MessageSysFlag.StoreHostV6);
  const bornV6 = isIPv6Host(message.bornHost.host);
  if (bornV6) sysFlag |= MessageSysFlag.BornHostV6;
  if (storeHostIsV6) sysFlag |= MessageSysFlag.StoreHostV6;
  const bodyCrc32 = crc32(message.body);
  const totalSize =
    4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 +
    (bornV6 ? 20 : 8) + 8 + (storeHostIsV6 ? 20 : 8) + 4 + 8 +
    4 + message.body.length + 1 + topicBytes.length + 2 + propertiesBytes; // prettier-ignore
  return {
    message,
    topicBytes,
    propertyNames,
    propertiesTextBytes,
    propertiesAscii,
    bodyCrc32,
    bodyCrc: bodyCrc32 & 0x7fffffff,
    sysFlag,
    totalSize,
  };
}

/*
 * Field writers: plain byte stores, which V8 compiles to a few instructions, where Buffer's
 * write*BE methods check their arguments on every call (prepareRecord has checked them once).
 */

function putInt32(target: Buffer, at: number, value: number): number {
  target[at] = value >>> 24;
  target[at + 1] = value >>> 16;
  target[at + 2] = value >>> 8;
  target[at + 3] = value;
  return at + 4;
}

/** A 64-bit two's-complement integer from a JS integer, as two 32-bit halves (no BigInt). */
function putInt64(target: Buffer, at: number, value: number): number {
  const high = Math.floor(value / 4294967296);
  putInt32(target, at, high);
  return putInt32(target, at + 4, value - high * 4294967296);
}

function putBytes(target: Buffer, at: number, bytes: Buffer): number {
  // Hosts and topics are a few bytes: a loop beats the call into Buffer#copy.
  for (let i = 0; i < bytes.length; i++) target[at + i] = bytes[i] ?? 0;
  return at + bytes.length;
}

function putHost(target: Buffer, at: number, host: HostAddress): number {
  return putInt32(target, at + writeIpBytes(target, at, host.host), host.port);
}

function putAscii(target: Buffer, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) target[at + i] = text.charCodeAt(i);
  return at + text.length;
}

/** Writes what encodeProperties would build of the `names` properties at `at`; returns the end. */
function writeProperties(
  target: Buffer,
  at: number,
  properties: Properties,
  names: readonly string[],
  ascii: boolean,
): number {
  let p = at;
  for (const name of names) {
    if (name === MessageProperty.RecordCrc32) continue;
    const value = String(properties[name]);
    if (ascii) {
      p = putAscii(target, p, name);
      target[p++] = NAME_VALUE_SEPARATOR_BYTE;
      p = putAscii(target, p, value);
    } else {
      p += target.write(name, p, 'utf8');
      target[p++] = NAME_VALUE_SEPARATOR_BYTE;
      p += target.write(value, p, 'utf8');
    }
    target[p++] = PROPERTY_SEPARATOR_BYTE;
  }
  return p;
}

const RECORD_CRC_PROPERTY_PREFIX_BYTES = Buffer.from(RECORD_CRC_PROPERTY_PREFIX, 'latin1');
const PROPERTY_SEPARATOR_BYTE = PROPERTY_SEPARATOR.charCodeAt(0);
const NAME_VALUE_SEPARATOR_BYTE = NAME_VALUE_SEPARATOR.charCodeAt(0);
const DIGIT_ZERO = 0x30;

/** Writes the record at `at` in `target`; returns the bytes written (the record's totalSize). */
export function writeRecord(target: Buffer, at: number, record: PreparedRecord, placement: RecordPlacement): number {
  const { message } = record;
  invariant(target.length - at >= record.totalSize, 'record does not fit the target buffer');
  let p = at;
  p = putInt32(target, p, record.totalSize);
  p = putInt32(target, p, MESSAGE_MAGIC_CODE);
  p = putInt32(target, p, record.bodyCrc);
  p = putInt32(target, p, message.queueId);
  p = putInt32(target, p, message.flag | 0);
  p = putInt64(target, p, placement.queueOffset);
  p = putInt64(target, p, placement.commitLogOffset);
  p = putInt32(target, p, record.sysFlag);
  p = putInt64(target, p, message.bornTimestamp);
  p = putHost(target, p, message.bornHost);
  p = putInt64(target, p, placement.storeTimestamp);
  p = putHost(target, p, placement.storeHost);
  p = putInt32(target, p, message.reconsumeTimes);
  p = putInt64(target, p, message.preparedTransactionOffset);
  p = putInt32(target, p, message.body.length);
  const bodyAt = p;
  // TypedArray#set copies without the view Buffer#copy allocates around its source.
  target.set(message.body, p);
  p += message.body.length;
  target[p++] = record.topicBytes.length;
  p = putBytes(target, p, record.topicBytes);
  const propertiesBytes = record.propertiesTextBytes + RECORD_CRC_PROPERTY_BYTES;
  target[p++] = propertiesBytes >>> 8;
  target[p++] = propertiesBytes;
  const propertiesEnd = writeProperties(target, p, message.properties, record.propertyNames, record.propertiesAscii);
  invariant(propertiesEnd - p === record.propertiesTextBytes, 'properties changed after prepareRecord');
  p = propertiesEnd;
  p = putBytes(target, p, RECORD_CRC_PROPERTY_PREFIX_BYTES);
  const digitsAt = p;
  p += RECORD_CRC_DIGITS;
  target[p++] = PROPERTY_SEPARATOR_BYTE;
  invariant(p - at === record.totalSize, 'record size mismatch while encoding');
  // The record CRC covers every byte before its own ten digits.
  const bodyLength = message.body.length;
  let recordCrc =
    bodyLength < CRC_COMBINE_MIN_BODY_BYTES
      ? crc32(target.subarray(at, digitsAt))
      : crc32(
          target.subarray(bodyAt + bodyLength, digitsAt),
          crc32Combine(crc32(target.subarray(at, bodyAt)), record.bodyCrc32, bodyLength),
        );
  for (let i = RECORD_CRC_DIGITS - 1; i >= 0; i--) {
    target[digitsAt + i] = DIGIT_ZERO + (recordCrc % 10);
    recordCrc = Math.floor(recordCrc / 10);
  }
  return record.totalSize;
}

export function encodeRecord(record: PreparedRecord, placement: RecordPlacement): Buffer {
  const target = Buffer.allocUnsafe(record.totalSize);
  writeRecord(target, 0, record, placement);
  return target;
}

/** Writes a blank end-of-segment record of `bytesLeft` (>= 8) bytes at `at`; returns 8. */
export function writeBlankRecord(target: Buffer, at: number, bytesLeft: number): number {
  invariant(bytesLeft >= BLANK_RECORD_MIN_BYTES, 'blank record needs at least 8 bytes');
  target.writeInt32BE(bytesLeft, at);
  target.writeInt32BE(BLANK_MAGIC_CODE, at + 4);
  return BLANK_RECORD_MIN_BYTES;
}

export type RecordCheck =
  | { readonly kind: 'message'; readonly size: number }
  | { readonly kind: 'blank'; readonly size: number }
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'corrupt'; readonly reason: string };

/** The smallest possible message record: fixed fields, a 1-byte topic, no body, the CRC property. */
const MIN_MESSAGE_RECORD_BYTES = 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4 + 1 + 1 + 2;

/**
 * Checks the record at `at` without decoding it (recovery walks the log with this): magic, sizes and,
 * when `verifyCrc`, the body CRC and the record CRC (which every stored record carries). `available` is how
 * many bytes from `at` are valid to read.
 */
export function checkRecord(source: Buffer, at: number, available: number, verifyCrc: boolean): RecordCheck {
  if (available < BLANK_RECORD_MIN_BYTES) return { kind: 'incomplete' };
  const totalSize = source.readInt32BE(at);
  const magic = source.readInt32BE(at + 4);
  if (magic === BLANK_MAGIC_CODE) {
    if (totalSize < BLANK_RECORD_MIN_BYTES) return { kind: 'corrupt', reason: `blank record of ${totalSize} bytes` };
    return { kind: 'blank', size: totalSize };
  }
  if (magic !== MESSAGE_MAGIC_CODE) {
    return { kind: 'corrupt', reason: `bad magic code 0x${(magic >>> 0).toString(16)}` };
  }
  if (totalSize < MIN_MESSAGE_RECORD_BYTES) return { kind: 'corrupt', reason: `record size ${totalSize} too small` };
  if (totalSize > available) return { kind: 'incomplete' };
  const layout = variableLayout(source, at, totalSize);
  if (typeof layout === 'string') return { kind: 'corrupt', reason: layout };
  if (verifyCrc) {
    const body = source.subarray(layout.bodyAt, layout.bodyAt + layout.bodyLength);
    if (bodyCrcOf(body) !== source.readInt32BE(at + Field.BodyCrc))
      return { kind: 'corrupt', reason: 'body CRC mismatch' };
    const crcProblem = checkRecordCrc(source, at, totalSize, layout);
    if (crcProblem !== undefined) return { kind: 'corrupt', reason: crcProblem };
  }
  return { kind: 'message', size: totalSize };
}

interface VariableLayout {
  bornHostBytes: number;
  storeHostBytes: number;
  bodyAt: number;
  bodyLength: number;
  topicAt: number;
  topicLength: number;
  propertiesAt: number;
  propertiesLength: number;
}

/** Finds the variable-length parts and checks that they add up to totalSize. */
function variableLayout(source: Buffer, at: number, totalSize: number): VariableLayout | string {
  const sysFlag = source.readInt32BE(at + Field.SysFlag);
  const bornHostBytes = sysFlag & MessageSysFlag.BornHostV6 ? 20 : 8;
  const storeHostBytes = sysFlag & MessageSysFlag.StoreHostV6 ? 20 : 8;
  const end = at + totalSize;
  let p = at + Field.BornHost + bornHostBytes + 8 + storeHostBytes + 4 + 8;
  if (p + 4 > end) return 'record too short for its hosts';
  const bodyLength = source.readInt32BE(p);
  const bodyAt = p + 4;
  p = bodyAt + bodyLength;
  if (bodyLength < 0 || p + 1 > end) return `body length ${bodyLength} overruns the record`;
  const topicLength = source.readUInt8(p);
  const topicAt = p + 1;
  p = topicAt + topicLength;
  if (topicLength === 0 || p + 2 > end) return `topic length ${topicLength} overruns the record`;
  const propertiesLength = source.readUInt16BE(p);
  const propertiesAt = p + 2;
  if (propertiesAt + propertiesLength !== end) return 'record fields do not add up to its total size';
  return { bornHostBytes, storeHostBytes, bodyAt, bodyLength, topicAt, topicLength, propertiesAt, propertiesLength };
}

function checkRecordCrc(source: Buffer, at: number, totalSize: number, layout: VariableLayout): string | undefined {
  // Every record in our CommitLog is written by writeRecord, so a missing CRC property is damage.
  const end = at + totalSize;
  const prefixAt = end - RECORD_CRC_PROPERTY_BYTES;
  if (layout.propertiesLength < RECORD_CRC_PROPERTY_BYTES) return 'record CRC property missing';
  if (
    source.toString('latin1', prefixAt, prefixAt + RECORD_CRC_PROPERTY_PREFIX.length) !== RECORD_CRC_PROPERTY_PREFIX
  ) {
    return 'record CRC property missing';
  }
  if (source[end - 1] !== PROPERTY_SEPARATOR.charCodeAt(0)) return 'record does not end with a property separator';
  const digitsAt = end - 1 - RECORD_CRC_DIGITS;
  const stored = Number(source.toString('latin1', digitsAt, digitsAt + RECORD_CRC_DIGITS));
  return stored === crc32(source.subarray(at, digitsAt)) ? undefined : 'record CRC mismatch';
}

function readHost(source: Buffer, at: number, hostBytes: number): HostAddress {
  const ipLength = hostBytes === 20 ? 16 : 4;
  return { host: readIpBytes(source, at, ipLength), port: source.readInt32BE(at + ipLength) };
}

/** The offset message id: store host IP + port + CommitLog offset, upper-case hex (MessageDecoder.createMessageId). */
export function createOffsetMessageId(storeHost: HostAddress, commitLogOffset: number): string {
  const bytes = Buffer.alloc(isIPv6Host(storeHost.host) ? 28 : 16);
  const ipLength = writeIpBytes(bytes, 0, storeHost.host);
  bytes.writeInt32BE(storeHost.port, ipLength);
  bytes.writeBigInt64BE(BigInt(commitLogOffset), ipLength + 4);
  return bytes.toString('hex').toUpperCase();
}

export function parseOffsetMessageId(msgId: string): { storeHost: HostAddress; commitLogOffset: number } | undefined {
  if (!/^[0-9A-Fa-f]+$/.test(msgId) || (msgId.length !== 32 && msgId.length !== 56)) return undefined;
  const bytes = Buffer.from(msgId, 'hex');
  const ipLength = bytes.length === 16 ? 4 : 16;
  return {
    storeHost: { host: readIpBytes(bytes, 0, ipLength), port: bytes.readInt32BE(ipLength) },
    commitLogOffset: Number(bytes.readBigInt64BE(ipLength + 4)),
  };
}

/**
 * Decodes the record at `at`. Throws RbError(CorruptRecord) if it is not a valid message record;
 * callers that walk untrusted bytes use checkRecord first.
 */
export function decodeRecord(source: Buffer, at = 0, options: { copyBody?: boolean } = {}): StoredMessage {
  const available = source.length - at;
  const check = checkRecord(source, at, available, false);
  if (check.kind !== 'message') {
    const reason = check.kind === 'corrupt' ? check.reason : check.kind;
    throw new RbError(ErrorCode.CorruptRecord, `not a message record at ${at}: ${reason}`);
  }
  const totalSize = check.size;
  const layout = variableLayout(source, at, totalSize);
  invariant(typeof layout !== 'string', 'checked record has no layout');
  const hostsAt = at + Field.BornHost;
  const storeAt = hostsAt + layout.bornHostBytes + 8;
  const storeHost = readHost(source, storeAt, layout.storeHostBytes);
  const commitLogOffset = Number(source.readBigInt64BE(at + Field.PhysicalOffset));
  const bodyView = source.subarray(layout.bodyAt, layout.bodyAt + layout.bodyLength);
  const properties = decodeProperties(
    source.toString('utf8', layout.propertiesAt, layout.propertiesAt + layout.propertiesLength),
  );
  return {
    storeSize: totalSize,
    bodyCrc: source.readInt32BE(at + Field.BodyCrc),
    queueId: source.readInt32BE(at + Field.QueueId),
    flag: source.readInt32BE(at + Field.Flag),
    queueOffset: Number(source.readBigInt64BE(at + Field.QueueOffset)),
    commitLogOffset,
    sysFlag: source.readInt32BE(at + Field.SysFlag),
    bornTimestamp: Number(source.readBigInt64BE(at + Field.BornTimestamp)),
    bornHost: readHost(source, hostsAt, layout.bornHostBytes),
    storeTimestamp: Number(source.readBigInt64BE(storeAt - 8)),
    storeHost,
    reconsumeTimes: source.readInt32BE(storeAt + layout.storeHostBytes),
    preparedTransactionOffset: Number(source.readBigInt64BE(storeAt + layout.storeHostBytes + 4)),
    body: options.copyBody ? Buffer.from(bodyView) : bodyView,
    topic: source.toString('utf8', layout.topicAt, layout.topicAt + layout.topicLength),
    properties,
    msgId: createOffsetMessageId(storeHost, commitLogOffset),
  };
}

/** Decodes consecutive records (a pull response body). Throws on a malformed one. */
export function decodeRecords(source: Buffer): StoredMessage[] {
  const messages: StoredMessage[] = [];
  let at = 0;
  while (at < source.length) {
    const message = decodeRecord(source, at);
    messages.push(message);
    at += message.storeSize;
  }
  return messages;
}
