/**
 * Reads single fields of a stored record in place, without decoding the whole record: the read path
 * needs a record's store timestamp (time search), its tag (filtering) and its keys (index checks).
 * The layout is the one documented in common/message-record.ts; these helpers trust a record that
 * the store wrote or that checkRecord accepted.
 */
import { Field } from '../common/message-record.js';
import { MessageSysFlag } from '../common/message.js';
import { decodeProperties, type Properties } from '../common/properties.js';

function bornHostBytes(record: Buffer, at: number): number {
  return record.readInt32BE(at + Field.SysFlag) & MessageSysFlag.BornHostV6 ? 20 : 8;
}

function storeHostBytes(record: Buffer, at: number): number {
  return record.readInt32BE(at + Field.SysFlag) & MessageSysFlag.StoreHostV6 ? 20 : 8;
}

/** Where the store timestamp sits in the record starting at `at`. */
function storeTimestampAt(record: Buffer, at: number): number {
  return at + Field.BornHost + bornHostBytes(record, at);
}

export function recordStoreTimestamp(record: Buffer, at = 0): number {
  return Number(record.readBigInt64BE(storeTimestampAt(record, at)));
}

export function recordQueueOffset(record: Buffer, at = 0): number {
  return Number(record.readBigInt64BE(at + Field.QueueOffset));
}

export function recordCommitLogOffset(record: Buffer, at = 0): number {
  return Number(record.readBigInt64BE(at + Field.PhysicalOffset));
}

export function recordQueueId(record: Buffer, at = 0): number {
  return record.readInt32BE(at + Field.QueueId);
}

export function recordSysFlag(record: Buffer, at = 0): number {
  return record.readInt32BE(at + Field.SysFlag);
}

interface TailLayout {
  topicAt: number;
  topicLength: number;
  propertiesAt: number;
  propertiesLength: number;
}

function tailLayout(record: Buffer, at: number): TailLayout {
  // storeTimestamp 8 | storeHost | reconsumeTimes 4 | preparedTransactionOffset 8 | bodyLength 4 ...
  const bodyLengthAt = storeTimestampAt(record, at) + 8 + storeHostBytes(record, at) + 4 + 8;
  const bodyLength = record.readInt32BE(bodyLengthAt);
  const topicLengthAt = bodyLengthAt + 4 + bodyLength;
  const topicLength = record.readUInt8(topicLengthAt);
  const propertiesLengthAt = topicLengthAt + 1 + topicLength;
  return {
    topicAt: topicLengthAt + 1,
    topicLength,
    propertiesAt: propertiesLengthAt + 2,
    propertiesLength: record.readUInt16BE(propertiesLengthAt),
  };
}

export function recordTopic(record: Buffer, at = 0): string {
  const layout = tailLayout(record, at);
  return record.toString('utf8', layout.topicAt, layout.topicAt + layout.topicLength);
}

export function recordProperties(record: Buffer, at = 0): Properties {
  const layout = tailLayout(record, at);
  return decodeProperties(record.toString('utf8', layout.propertiesAt, layout.propertiesAt + layout.propertiesLength));
}
