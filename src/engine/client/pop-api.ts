/**
 * The RocketMQ 5 "pop" requests (MQClientAPIImpl popMessageAsync / ackMessageAsync /
 * changeInvisibleTimeAsync) and the receipt handle (ExtraInfoUtil): POP_MESSAGE leases messages to a
 * group member, ACK_MESSAGE removes one, CHANGE_MESSAGE_INVISIBLETIME moves its lease end and yields
 * a new handle. docs/wire-formats.md lists every field.
 */
import { ErrorCode, RbError } from '../common/errors.js';
import { RETRY_GROUP_TOPIC_PREFIX } from '../common/topic.js';
import { RequestCode, ResponseCode } from '../remoting/codes.js';
import { createRequest, type RemotingCommand } from '../remoting/command.js';
import { remoteError } from './broker-api.js';
import type { ClientInstance } from './client-instance.js';
import { decodePulledMessages, type MessageExt } from './message-ext.js';

/** ExtraInfoUtil's topic marks: the subscribed topic, or the group's pop retry topic. */
const NORMAL_TOPIC_MARK = '0';
const RETRY_TOPIC_MARK = '1';
/** MessageConst.KEY_SEPARATOR. */
const FIELD_SEPARATOR = ' ';

/** The parts of a receipt handle (ExtraInfoUtil.buildExtraInfo with the message's queue offset). */
export interface ReceiptHandle {
  ckStartOffset: number;
  popTimeMs: number;
  invisibleTimeMs: number;
  reviveQueueId: number;
  fromRetryTopic: boolean;
  brokerName: string;
  queueId: number;
  queueOffset: number;
}

export function formatReceiptHandle(handle: ReceiptHandle): string {
  return [
    handle.ckStartOffset,
    handle.popTimeMs,
    handle.invisibleTimeMs,
    handle.reviveQueueId,
    handle.fromRetryTopic ? RETRY_TOPIC_MARK : NORMAL_TOPIC_MARK,
    handle.brokerName,
    handle.queueId,
    handle.queueOffset,
  ].join(FIELD_SEPARATOR);
}

/** Parses a receipt handle; throws RB_ERR_MESSAGE_ILLEGAL for anything else. */
export function parseReceiptHandle(text: string): ReceiptHandle {
  const fields = text.split(FIELD_SEPARATOR);
  const numbers = fields.map(Number);
  const integral = (i: number): boolean => Number.isSafeInteger(numbers[i]);
  if (fields.length !== 8 || ![0, 1, 2, 3, 6, 7].every(integral) || (fields[4] !== '0' && fields[4] !== '1')) {
    throw new RbError(ErrorCode.MessageIllegal, `not a receipt handle: "${text}"`);
  }
  return {
    ckStartOffset: numbers[0] as number,
    popTimeMs: numbers[1] as number,
    invisibleTimeMs: numbers[2] as number,
    reviveQueueId: numbers[3] as number,
    fromRetryTopic: fields[4] === RETRY_TOPIC_MARK,
    brokerName: fields[5] as string,
    queueId: numbers[6] as number,
    queueOffset: numbers[7] as number,
  };
}

/** Parses `t queueId value;...` (startOffsetInfo) into `t@queueId` -> value. */
function parseStartOffsetInfo(text: string | undefined): Map<string, number> {
  const map = new Map<string, number>();
  if (text === undefined || text.length === 0) return map;
  for (const entry of text.split(';')) {
    const [mark, queueId, value] = entry.split(FIELD_SEPARATOR);
    const offset = Number(value);
    if (mark !== undefined && queueId !== undefined && Number.isFinite(offset)) map.set(`${mark}@${queueId}`, offset);
  }
  return map;
}

export interface PopRequest {
  group: string;
  topic: string;
  /** -1: the broker picks among the topic's queues (and the group's pop retry topic). */
  queueId: number;
  maxNums: number;
  invisibleTimeMs: number;
  /** Long polling: how long the broker may wait for a message (0 = answer at once). */
  pollTimeMs: number;
  /** ConsumeInitMode: 0 MIN (first offset), 1 MAX (last offset), for a group without an offset. */
  initMode: 0 | 1;
  expression: string;
}

/** A popped message and the topic its lease belongs to (the subscribed one or the pop retry topic). */
export interface PoppedMessage {
  message: MessageExt;
  /** The topic the record was popped from; ack and changeInvisibleTime name it. */
  leaseTopic: string;
  receiptHandle: string;
}

/** POP_MESSAGE to one broker; an empty list when nothing is available within the poll time. */
export async function popMessage(
  instance: ClientInstance,
  brokerAddress: string,
  brokerName: string,
  pop: PopRequest,
): Promise<PoppedMessage[]> {
  const request = createRequest(RequestCode.PopMessage, {
    consumerGroup: pop.group,
    topic: pop.topic,
    queueId: String(pop.queueId),
    maxMsgNums: String(pop.maxNums),
    invisibleTime: String(pop.invisibleTimeMs),
    pollTime: String(pop.pollTimeMs),
    bornTime: String(Date.now()),
    initMode: String(pop.initMode),
    expType: 'TAG',
    exp: pop.expression,
    order: 'false',
  });
  const response = await instance.invoke(brokerAddress, request, pop.pollTimeMs + instance.requestTimeoutMs);
  switch (response.code) {
    case ResponseCode.Success:
      break;
    case ResponseCode.PullNotFound:
    case ResponseCode.PollingTimeout:
    case ResponseCode.NoMessage:
    case ResponseCode.PollingFull:
      return [];
    default:
      throw remoteError(`pop ${pop.topic}`, response);
  }
  if (response.body === undefined || response.body.length === 0) return [];
  return toPopped(response, brokerName, pop.invisibleTimeMs);
}

function headerNumber(response: RemotingCommand, name: string, fallback: number): number {
  const value = Number(response.extFields[name]);
  return Number.isFinite(value) && response.extFields[name] !== undefined ? value : fallback;
}

/** Attaches a receipt handle to each record of a pop response (MQClientAPIImpl.processPopResponse). */
function toPopped(response: RemotingCommand, brokerName: string, requestedInvisibleMs: number): PoppedMessage[] {
  const popTimeMs = headerNumber(response, 'popTime', Date.now());
  const invisibleTimeMs = headerNumber(response, 'invisibleTime', requestedInvisibleMs);
  const reviveQueueId = headerNumber(response, 'reviveQid', 0);
  const startOffsets = parseStartOffsetInfo(response.extFields['startOffsetInfo']);
  return decodePulledMessages(response.body as Buffer, brokerName).map((message) => {
    const leaseTopic = message.topic;
    const fromRetryTopic = leaseTopic.startsWith(RETRY_GROUP_TOPIC_PREFIX);
    const mark = fromRetryTopic ? RETRY_TOPIC_MARK : NORMAL_TOPIC_MARK;
    const receiptHandle = formatReceiptHandle({
      ckStartOffset: startOffsets.get(`${mark}@${message.queueId}`) ?? message.queueOffset,
      popTimeMs,
      invisibleTimeMs,
      reviveQueueId,
      fromRetryTopic,
      brokerName,
      queueId: message.queueId,
      queueOffset: message.queueOffset,
    });
    return { message, leaseTopic, receiptHandle };
  });
}

/** The fields ACK_MESSAGE and CHANGE_MESSAGE_INVISIBLETIME share. */
function leaseFields(group: string, leaseTopic: string, receiptHandle: string): Record<string, string> {
  const handle = parseReceiptHandle(receiptHandle);
  return {
    consumerGroup: group,
    topic: leaseTopic,
    queueId: String(handle.queueId),
    offset: String(handle.queueOffset),
    extraInfo: receiptHandle,
  };
}

/** ACK_MESSAGE: the message is done; the group never sees it again. */
export async function ackMessage(
  instance: ClientInstance,
  brokerAddress: string,
  group: string,
  leaseTopic: string,
  receiptHandle: string,
): Promise<void> {
  const response = await instance.invoke(
    brokerAddress,
    createRequest(RequestCode.AckMessage, leaseFields(group, leaseTopic, receiptHandle)),
  );
  if (response.code !== ResponseCode.Success) throw remoteError('ack', response);
}

/** One lease to end with BATCH_ACK_MESSAGE: the subscribed topic (not the retry topic) and its handle. */
export interface BatchAckItem {
  topic: string;
  receiptHandle: string;
}

/**
 * The BatchAckMessageRequestBody for leases of one broker (MQClientAPIImpl.batchAckMessageAsync):
 * one BatchAck per (retry, queueId, ckStartOffset, popTime) with a bitset of offsets from
 * ckStartOffset, base64 as fastjson writes a byte[] (java.util.BitSet.toByteArray, little endian).
 */
export function batchAckBody(brokerName: string, group: string, items: readonly BatchAckItem[]): Buffer {
  const merged = new Map<string, { handle: ReceiptHandle; topic: string; bits: number[] }>();
  for (const item of items) {
    const handle = parseReceiptHandle(item.receiptHandle);
    const key = `${item.topic}@${handle.fromRetryTopic ? 1 : 0}@${handle.queueId}@${handle.ckStartOffset}@${handle.popTimeMs}`;
    let batch = merged.get(key);
    if (batch === undefined) {
      batch = { handle, topic: item.topic, bits: [] };
      merged.set(key, batch);
    }
    const bit = handle.queueOffset - handle.ckStartOffset;
    if (bit < 0)
      throw new RbError(ErrorCode.MessageIllegal, `receipt handle offset before its start: "${item.receiptHandle}"`);
    batch.bits.push(bit);
  }
  const acks = [...merged.values()].map(({ handle, topic, bits }) => {
    const bytes = Buffer.alloc((Math.max(...bits) >> 3) + 1);
    for (const bit of bits) bytes[bit >> 3] = (bytes[bit >> 3] as number) | (1 << (bit & 7));
    return {
      c: group,
      t: topic,
      r: handle.fromRetryTopic ? RETRY_TOPIC_MARK : NORMAL_TOPIC_MARK,
      so: handle.ckStartOffset,
      q: handle.queueId,
      rq: handle.reviveQueueId,
      pt: handle.popTimeMs,
      it: handle.invisibleTimeMs,
      b: bytes.toString('base64'),
    };
  });
  return Buffer.from(JSON.stringify({ brokerName, acks }), 'utf8');
}

/**
 * BATCH_ACK_MESSAGE: ends every lease named, in one request to one broker. The broker skips leases
 * it no longer holds (acked, expired, replaced), as RocketMQ's does; resolves with how many it ended
 * when the broker says (ours does), else the number asked.
 */
export async function batchAckMessage(
  instance: ClientInstance,
  brokerAddress: string,
  brokerName: string,
  group: string,
  items: readonly BatchAckItem[],
): Promise<number> {
  if (items.length === 0) return 0;
  const request = createRequest(RequestCode.BatchAckMessage, {});
  request.body = batchAckBody(brokerName, group, items);
  const response = await instance.invoke(brokerAddress, request);
  if (response.code !== ResponseCode.Success) throw remoteError('batch ack', response);
  return headerNumber(response, 'ackedNum', items.length);
}

/**
 * CHANGE_MESSAGE_INVISIBLETIME: the lease now ends `invisibleTimeMs` from now (0 = visible again at
 * once). Returns the new receipt handle; the old one is void.
 */
export async function changeInvisibleTime(
  instance: ClientInstance,
  brokerAddress: string,
  group: string,
  leaseTopic: string,
  receiptHandle: string,
  invisibleTimeMs: number,
): Promise<string> {
  const fields = leaseFields(group, leaseTopic, receiptHandle);
  fields['invisibleTime'] = String(invisibleTimeMs);
  const response = await instance.invoke(brokerAddress, createRequest(RequestCode.ChangeMessageInvisibleTime, fields));
  if (response.code !== ResponseCode.Success) throw remoteError('change invisible time', response);
  const old = parseReceiptHandle(receiptHandle);
  return formatReceiptHandle({
    ckStartOffset: old.queueOffset,
    popTimeMs: headerNumber(response, 'popTime', Date.now()),
    invisibleTimeMs: headerNumber(response, 'invisibleTime', invisibleTimeMs),
    reviveQueueId: headerNumber(response, 'reviveQid', old.reviveQueueId),
    fromRetryTopic: old.fromRetryTopic,
    brokerName: old.brokerName,
    queueId: old.queueId,
    queueOffset: old.queueOffset,
  });
}
