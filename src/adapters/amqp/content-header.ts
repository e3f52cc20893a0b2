/**
 * Content header frame payload of the basic class (spec 4.2.6.1 and the basic class properties):
 *
 *   class-id short (60) | weight short (0) | body-size longlong | property-flags short | properties
 *
 * Flag bit 15 marks the first property, bit 14 the second, and so on down to bit 2 for the 14th;
 * bit 0 says another flags word follows (never needed for basic). Only present properties are on
 * the wire, in flag order. Frames and body splitting are in frame-writer.ts / frame-decoder.ts.
 */
import { ClassId } from './constants.js';
import { PayloadReader, type PayloadWriter } from './codec.js';
import { AmqpProtocolError } from './errors.js';
import { readTable, writeTable, type FieldTable } from './field-table.js';
import { ReplyCode } from './reply-codes.js';

/** The 14 basic properties. Absent ones are undefined; `timestamp` is in seconds since the epoch. */
export interface BasicProperties {
  contentType?: string | undefined;
  contentEncoding?: string | undefined;
  headers?: FieldTable | undefined;
  /** 1 = transient, 2 = persistent. */
  deliveryMode?: number | undefined;
  priority?: number | undefined;
  correlationId?: string | undefined;
  replyTo?: string | undefined;
  /** Per-message TTL in milliseconds, as a decimal string (RabbitMQ). */
  expiration?: string | undefined;
  messageId?: string | undefined;
  timestamp?: number | undefined;
  type?: string | undefined;
  userId?: string | undefined;
  appId?: string | undefined;
  clusterId?: string | undefined;
}

export interface ContentHeader {
  classId: number;
  bodySizeBytes: number;
  properties: BasicProperties;
}

const FLAG_CONTENT_TYPE = 1 << 15;
const FLAG_CONTENT_ENCODING = 1 << 14;
const FLAG_HEADERS = 1 << 13;
const FLAG_DELIVERY_MODE = 1 << 12;
const FLAG_PRIORITY = 1 << 11;
const FLAG_CORRELATION_ID = 1 << 10;
const FLAG_REPLY_TO = 1 << 9;
const FLAG_EXPIRATION = 1 << 8;
const FLAG_MESSAGE_ID = 1 << 7;
const FLAG_TIMESTAMP = 1 << 6;
const FLAG_TYPE = 1 << 5;
const FLAG_USER_ID = 1 << 4;
const FLAG_APP_ID = 1 << 3;
const FLAG_CLUSTER_ID = 1 << 2;
/** Bit 1 names no basic property; bit 0 is the continuation flag. */
const FLAG_UNUSED = 1 << 1;
const FLAG_CONTINUATION = 1;

/**
 * Decode a content header frame payload. A class other than basic is UNEXPECTED_FRAME (only basic
 * carries content in 0-9-1); truncated, trailing or unknown property bytes are SYNTAX_ERROR.
 */
export function decodeContentHeader(payload: Buffer): ContentHeader {
  const reader = new PayloadReader(payload, 0, payload.length);
  reader.classId = ClassId.Basic;
  const classId = reader.u16();
  if (classId !== ClassId.Basic) {
    throw new AmqpProtocolError(
      ReplyCode.UnexpectedFrame,
      `content header for class ${classId}; only basic has content`,
    );
  }
  reader.skip(2, 'weight');
  const bodySizeBytes = reader.u64();
  const properties = readBasicProperties(reader);
  reader.done('content header');
  return { classId, bodySizeBytes, properties };
}

function readBasicProperties(r: PayloadReader): BasicProperties {
  const flags = r.u16();
  if ((flags & FLAG_UNUSED) !== 0) throw r.fail('content header sets property flag bit 1, which basic does not define');
  if ((flags & FLAG_CONTINUATION) !== 0) {
    // Further flag words may only repeat "nothing more": basic has no 15th property.
    let more = true;
    while (more) {
      const next = r.u16();
      if ((next & ~FLAG_CONTINUATION) !== 0) throw r.fail('content header flags name properties basic does not define');
      more = (next & FLAG_CONTINUATION) !== 0;
    }
  }
  return {
    contentType: (flags & FLAG_CONTENT_TYPE) !== 0 ? r.shortString() : undefined,
    contentEncoding: (flags & FLAG_CONTENT_ENCODING) !== 0 ? r.shortString() : undefined,
    headers: (flags & FLAG_HEADERS) !== 0 ? readTable(r) : undefined,
    deliveryMode: (flags & FLAG_DELIVERY_MODE) !== 0 ? r.u8() : undefined,
    priority: (flags & FLAG_PRIORITY) !== 0 ? r.u8() : undefined,
    correlationId: (flags & FLAG_CORRELATION_ID) !== 0 ? r.shortString() : undefined,
    replyTo: (flags & FLAG_REPLY_TO) !== 0 ? r.shortString() : undefined,
    expiration: (flags & FLAG_EXPIRATION) !== 0 ? r.shortString() : undefined,
    messageId: (flags & FLAG_MESSAGE_ID) !== 0 ? r.shortString() : undefined,
    timestamp: (flags & FLAG_TIMESTAMP) !== 0 ? r.u64() : undefined,
    type: (flags & FLAG_TYPE) !== 0 ? r.shortString() : undefined,
    userId: (flags & FLAG_USER_ID) !== 0 ? r.shortString() : undefined,
    appId: (flags & FLAG_APP_ID) !== 0 ? r.shortString() : undefined,
    clusterId: (flags & FLAG_CLUSTER_ID) !== 0 ? r.shortString() : undefined,
  };
}

/**
 * Append a basic content header payload. Properties that are undefined are left out; a short
 * string over 255 bytes or an unencodable header value throws AmqpEncodeError.
 */
export function writeContentHeaderPayload(w: PayloadWriter, bodySizeBytes: number, properties: BasicProperties): void {
  w.u16(ClassId.Basic);
  w.u16(0);
  w.u64(bodySizeBytes);
  const flagsAt = w.reserve(2);
  let flags = 0;
  const p = properties;
  if (p.contentType !== undefined) {
    flags |= FLAG_CONTENT_TYPE;
    w.shortString(p.contentType, 'contentType');
  }
  if (p.contentEncoding !== undefined) {
    flags |= FLAG_CONTENT_ENCODING;
    w.shortString(p.contentEncoding, 'contentEncoding');
  }
  if (p.headers !== undefined) {
    flags |= FLAG_HEADERS;
    writeTable(w, p.headers);
  }
  if (p.deliveryMode !== undefined) {
    flags |= FLAG_DELIVERY_MODE;
    w.u8(p.deliveryMode);
  }
  if (p.priority !== undefined) {
    flags |= FLAG_PRIORITY;
    w.u8(p.priority);
  }
  if (p.correlationId !== undefined) {
    flags |= FLAG_CORRELATION_ID;
    w.shortString(p.correlationId, 'correlationId');
  }
  if (p.replyTo !== undefined) {
    flags |= FLAG_REPLY_TO;
    w.shortString(p.replyTo, 'replyTo');
  }
  if (p.expiration !== undefined) {
    flags |= FLAG_EXPIRATION;
    w.shortString(p.expiration, 'expiration');
  }
  if (p.messageId !== undefined) {
    flags |= FLAG_MESSAGE_ID;
    w.shortString(p.messageId, 'messageId');
  }
  if (p.timestamp !== undefined) {
    flags |= FLAG_TIMESTAMP;
    w.u64(p.timestamp);
  }
  if (p.type !== undefined) {
    flags |= FLAG_TYPE;
    w.shortString(p.type, 'type');
  }
  if (p.userId !== undefined) {
    flags |= FLAG_USER_ID;
    w.shortString(p.userId, 'userId');
  }
  if (p.appId !== undefined) {
    flags |= FLAG_APP_ID;
    w.shortString(p.appId, 'appId');
  }
  if (p.clusterId !== undefined) {
    flags |= FLAG_CLUSTER_ID;
    w.shortString(p.clusterId, 'clusterId');
  }
  w.buf.writeUInt16BE(flags, flagsAt);
}
