/**
 * What consumers receive: a pulled record decoded into a MessageExt-like object (RocketMQ
 * MessageExt / MessageClientExt). Owns decoding of pull response bodies: record layout, zlib-
 * compressed bodies (sysFlag bit 0) and splitting user properties from system ones.
 */
import { inflateSync } from 'node:zlib';
import { ErrorCode, RbError } from '../common/errors.js';
import { type HostAddress, MessageSysFlag, type StoredMessage } from '../common/message.js';
import { decodeRecords } from '../common/message-record.js';
import { keysOf, MessageProperty, type Properties } from '../common/properties.js';

/** Property names RocketMQ reserves (MessageConst.STRING_HASH_SET and friends); the rest are user properties. */
export const SYSTEM_PROPERTY_NAMES: ReadonlySet<string> = new Set([
  'KEYS', 'TAGS', 'WAIT', 'DELAY', 'RETRY_TOPIC', 'REAL_TOPIC', 'REAL_QID', 'TRAN_MSG', 'PGROUP', 'MIN_OFFSET',
  'MAX_OFFSET', 'BUYER_ID', 'ORIGIN_MESSAGE_ID', 'TRANSFER_FLAG', 'CORRECTION_FLAG', 'MQ2_FLAG', 'RECONSUME_TIME',
  'MSG_REGION', 'TRACE_ON', 'UNIQ_KEY', 'MAX_RECONSUME_TIMES', 'CONSUME_START_TIME', 'TRAN_PREPARED_QUEUE_OFFSET',
  'TRANSACTION_CHECK_TIMES', 'CHECK_IMMUNITY_TIME_IN_SECONDS', 'INSTANCE_ID', 'CORRELATION_ID', 'REPLY_TO_CLIENT',
  'TTL', 'ARRIVE_TIME', 'PUSH_REPLY_TIME', 'CLUSTER', 'MSG_TYPE', '__STARTDELIVERTIME', 'SHARDING_KEY',
  'TIMER_DELIVER_MS', 'TIMER_DELAY_SEC', 'TIMER_DELAY_MS', 'TIMER_OUT_MS', 'TIMER_ENQUEUE_MS', 'TIMER_DEQUEUE_MS',
  'TIMER_ROLL_TIMES', 'TIMER_DEL_UNIQKEY', 'POP_CK', 'POP_CK_OFFSET', '1ST_POP_TIME', 'INNER_NUM', 'INNER_BASE',
  'INNER_MULTI_DISPATCH', 'INNER_MULTI_QUEUE_OFFSET', 'TRACE_CONTEXT', '__CRC32#',
]); // prettier-ignore

/** A message as a consumer sees it. */
export interface MessageExt {
  topic: string;
  tags: string | undefined;
  keys: string[];
  /** The body, inflated if the producer compressed it. */
  body: Buffer;
  /** User properties only (system names such as TAGS, KEYS, UNIQ_KEY removed). */
  properties: Properties;
  /** Every property as stored, system ones included. */
  allProperties: Properties;
  /** The producer's unique id (UNIQ_KEY), or the offset id for messages without one. */
  msgId: string;
  /** Store host + CommitLog offset: locates the record on its broker. */
  offsetMsgId: string;
  brokerName: string;
  queueId: number;
  queueOffset: number;
  commitLogOffset: number;
  reconsumeTimes: number;
  bornTimestamp: number;
  storeTimestamp: number;
  bornHost: HostAddress;
  storeHost: HostAddress;
  flag: number;
  sysFlag: number;
}

export function userPropertiesOf(properties: Properties): Properties {
  const user: Properties = {};
  for (const [name, value] of Object.entries(properties)) {
    if (!SYSTEM_PROPERTY_NAMES.has(name)) user[name] = value;
  }
  return user;
}

/** Turns one decoded record into a MessageExt. */
export function toMessageExt(stored: StoredMessage, brokerName: string): MessageExt {
  let body = stored.body;
  if ((stored.sysFlag & MessageSysFlag.Compressed) !== 0) {
    try {
      body = inflateSync(stored.body);
    } catch (err) {
      throw new RbError(ErrorCode.CorruptRecord, `compressed body of ${stored.msgId} does not inflate`, { cause: err });
    }
  }
  const tags = stored.properties[MessageProperty.Tags];
  return {
    topic: stored.topic,
    tags: tags === undefined || tags.length === 0 ? undefined : tags,
    keys: keysOf(stored.properties),
    body,
    properties: userPropertiesOf(stored.properties),
    allProperties: stored.properties,
    msgId: stored.properties[MessageProperty.UniqueClientMessageId] ?? stored.msgId,
    offsetMsgId: stored.msgId,
    brokerName,
    queueId: stored.queueId,
    queueOffset: stored.queueOffset,
    commitLogOffset: stored.commitLogOffset,
    reconsumeTimes: stored.reconsumeTimes,
    bornTimestamp: stored.bornTimestamp,
    storeTimestamp: stored.storeTimestamp,
    bornHost: stored.bornHost,
    storeHost: stored.storeHost,
    flag: stored.flag,
    sysFlag: stored.sysFlag,
  };
}

/** Decodes a pull response body (stored records back to back). Throws RbError(CorruptRecord) on bad bytes. */
export function decodePulledMessages(body: Buffer, brokerName: string): MessageExt[] {
  return decodeRecords(body).map((stored) => toMessageExt(stored, brokerName));
}
