import { crc32 } from 'node:zlib';
import { invariant } from './assert.js';
import { ErrorCode, RbError } from './errors.js';
import { isIPv6Host, readIpBytes, writeIpBytes } from './host-address.js';
import { PROPERTIES_MAX_BYTES } from './limits.js';
import { type HostAddress, MessageSysFlag, type MessageToStore, type StoredMessage } from './message.js';
import { decodeProperties, encodeProperties, MessageProperty, PROPERTY_SEPARATOR } from './properties.js';

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

/** What the store fills in when it appends a record. */
export interface RecordPlacement {
  queueOffset: number;
  commitLogOffset: number;
  storeTimestamp: number;
  storeHost: HostAddress;
}

/** A message prepared for encoding: the variable parts are turned into bytes once. */
export interface PreparedRecord {
  readonly message: MessageToStore;
  readonly topicBytes: Buffer;
  readonly propertiesBytes: Buffer;
  readonly bodyCrc: number;
  readonly sysFlag: number;
  readonly totalSize: number;
}

/**
 * Checks the message and turns topic and properties into bytes. Throws RbError for a message that
 * cannot be stored (the caller's fault), never for a store problem.
 */
export function prepareRecord(message: MessageToStore, storeHostIsV6: boolean): PreparedRecord {
  const topicBytes = Buffer.from(message.topic, 'utf8');
  if (topicBytes.length === 0 || topicBytes.length > 127) {
    throw new RbError(ErrorCode.TopicInvalid, `topic must be 1 to 127 bytes, got ${topicBytes.length}`);
  }
  const properties = { ...message.properties };
  delete properties[MessageProperty.RecordCrc32];
  const propertiesText = encodeProperties(properties) + RECORD_CRC_PROPERTY_PREFIX + '0'.repeat(RECORD_CRC_DIGITS);
  const propertiesBytes = Buffer.from(propertiesText + PROPERTY_SEPARATOR, 'utf8');
  if (propertiesBytes.length > PROPERTIES_MAX_BYTES) {
    throw new RbError(
      ErrorCode.PropertiesTooLarge,
      `properties take ${propertiesBytes.length} bytes, more than ${PROPERTIES_MAX_BYTES}`,
    );
  }
  let sysFlag = message.sysFlag & ~(MessageSysFlag.BornHostV6 | MessageSysFlag.StoreHostV6);
  const bornV6 = isIPv6Host(message.bornHost.host);
  if (bornV6) sysFlag |= MessageSysFlag.BornHostV6;
  if (storeHostIsV6) sysFlag |= MessageSysFlag.StoreHostV6;
  const totalSize =
    4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 +
    (bornV6 ? 20 : 8) + 8 + (storeHostIsV6 ? 20 : 8) + 4 + 8 +
    4 + message.body.length + 1 + topicBytes.length + 2 + propertiesBytes.length; // prettier-ignore
  return { message, topicBytes, propertiesBytes, bodyCrc: bodyCrcOf(message.body), sysFlag, totalSize };
}

function writeHost(target: Buffer, at: number, host: HostAddress): number {
  const ipLength = writeIpBytes(target, at, host.host);
  target.writeInt32BE(host.port, at + ipLength);
  return ipLength + 4;
}

/** Writes the record at `at` in `target`; returns the bytes written (the record's totalSize). */
export function writeRecord(target: Buffer, at: number, record: PreparedRecord, placement: RecordPlacement): number {
  const { message } = record;
  invariant(target.length - at >= record.totalSize, 'record does not fit the target buffer');
  let p = at;
  p = target.writeInt32BE(record.totalSize, p);
  p = target.writeInt32BE(MESSAGE_MAGIC_CODE, p);
  p = target.writeInt32BE(record.bodyCrc, p);
  p = target.writeInt32BE(message.queueId, p);
  p = target.writeInt32BE(message.flag | 0, p);
  p = target.writeBigInt64BE(BigInt(placement.queueOffset), p);
  p = target.writeBigInt64BE(BigInt(placement.commitLogOffset), p);
  p = target.writeInt32BE(record.sysFlag, p);
  p = target.writeBigInt64BE(BigInt(message.bornTimestamp), p);
  p += writeHost(target, p, message.bornHost);
  p = target.writeBigInt64BE(BigInt(placement.storeTimestamp), p);
  p += writeHost(target, p, placement.storeHost);
  p = target.writeInt32BE(message.reconsumeTimes, p);
  p = target.writeBigInt64BE(BigInt(message.preparedTransactionOffset), p);
  p = target.writeInt32BE(message.body.length, p);
  p += message.body.copy(target, p);
  p = target.writeUInt8(record.topicBytes.length, p);
  p += record.topicBytes.copy(target, p);
  p = target.writeUInt16BE(record.propertiesBytes.length, p);
  p += record.propertiesBytes.copy(target, p);
  invariant(p - at === record.totalSize, 'record size mismatch while encoding');
  // The record CRC covers every byte before its own ten digits.
  const digitsAt = at + record.totalSize - 1 - RECORD_CRC_DIGITS;
  const recordCrc = crc32(target.subarray(at, digitsAt));
  target.write(String(recordCrc).padStart(RECORD_CRC_DIGITS, '0'), digitsAt, 'latin1');
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
