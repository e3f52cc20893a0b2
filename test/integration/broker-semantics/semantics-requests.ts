/**
 * Request builders and readers for the broker-semantics suites (pop, transactions, locks, consume
 * stats), in the wire formats of docs/wire-formats.md, on top of the broker harness.
 */
import { decodeRecords } from '../../../src/engine/common/message-record.js';
import type { StoredMessage } from '../../../src/engine/common/message.js';
import { RequestCode } from '../../../src/engine/remoting/codes.js';
import { createRequest, type RemotingCommand } from '../../../src/engine/remoting/command.js';

export interface PopOptions {
  queueId?: number;
  maxMsgNums?: number;
  invisibleTimeMs?: number;
  pollTimeMs?: number;
  exp?: string;
  initMode?: number;
}

export function popRequest(group: string, topic: string, options: PopOptions = {}): RemotingCommand {
  return createRequest(RequestCode.PopMessage, {
    consumerGroup: group,
    topic,
    queueId: String(options.queueId ?? -1),
    maxMsgNums: String(options.maxMsgNums ?? 32),
    invisibleTime: String(options.invisibleTimeMs ?? 30_000),
    pollTime: String(options.pollTimeMs ?? 0),
    bornTime: String(Date.now()),
    initMode: String(options.initMode ?? 0),
    expType: 'TAG',
    exp: options.exp ?? '*',
    order: 'false',
  });
}

/** A popped message with its receipt handle (ExtraInfoUtil.buildExtraInfo). */
export interface Popped {
  message: StoredMessage;
  /** The topic to ack on (the record's topic: the subscribed one or the pop retry topic). */
  leaseTopic: string;
  extraInfo: string;
}

/** Decodes a pop response and builds each message's receipt handle as the client does. */
export function poppedOf(response: RemotingCommand, brokerName = 'broker-a'): Popped[] {
  const fields = response.extFields;
  const starts = new Map<string, string>();
  for (const entry of (fields['startOffsetInfo'] ?? '').split(';')) {
    const [t, queueId, offset] = entry.split(' ');
    if (t !== undefined && queueId !== undefined && offset !== undefined) starts.set(`${t}@${queueId}`, offset);
  }
  return decodeRecords(response.body ?? Buffer.alloc(0)).map((message) => {
    const t = message.topic.startsWith('%RETRY%') ? '1' : '0';
    const ckStart = starts.get(`${t}@${message.queueId}`) ?? String(message.queueOffset);
    const extraInfo = [
      ckStart,
      fields['popTime'],
      fields['invisibleTime'],
      fields['reviveQid'],
      t,
      brokerName,
      message.queueId,
      message.queueOffset,
    ].join(' ');
    return { message, leaseTopic: message.topic, extraInfo };
  });
}

export function ackRequest(group: string, popped: Popped): RemotingCommand {
  return createRequest(RequestCode.AckMessage, {
    consumerGroup: group,
    topic: popped.leaseTopic,
    queueId: String(popped.message.queueId),
    offset: String(popped.message.queueOffset),
    extraInfo: popped.extraInfo,
  });
}

export function changeInvisibleRequest(group: string, popped: Popped, invisibleTimeMs: number): RemotingCommand {
  return createRequest(RequestCode.ChangeMessageInvisibleTime, {
    consumerGroup: group,
    topic: popped.leaseTopic,
    queueId: String(popped.message.queueId),
    offset: String(popped.message.queueOffset),
    extraInfo: popped.extraInfo,
    invisibleTime: String(invisibleTimeMs),
  });
}

/** The receipt handle after CHANGE_MESSAGE_INVISIBLETIME (ckStartOffset = the message's offset). */
export function renewed(popped: Popped, response: RemotingCommand, brokerName = 'broker-a'): Popped {
  const t = popped.leaseTopic.startsWith('%RETRY%') ? '1' : '0';
  const { queueId, queueOffset } = popped.message;
  const f = response.extFields;
  const extraInfo = [
    queueOffset,
    f['popTime'],
    f['invisibleTime'],
    f['reviveQid'],
    t,
    brokerName,
    queueId,
    queueOffset,
  ];
  return { ...popped, extraInfo: extraInfo.join(' ') };
}

/** HEART_BEAT registering only a producer group (transaction checks go to it). */
export function producerHeartbeat(clientID: string, producerGroup: string): RemotingCommand {
  const body = { clientID, producerDataSet: [{ groupName: producerGroup }], consumerDataSet: [] };
  return createRequest(RequestCode.HeartBeat, {}, Buffer.from(JSON.stringify(body)));
}

export function endTransactionRequest(
  producerGroup: string,
  tranStateTableOffset: string,
  commitLogOffset: string,
  commitOrRollback: 0 | 8 | 12,
  fromTransactionCheck = false,
): RemotingCommand {
  return createRequest(RequestCode.EndTransaction, {
    producerGroup,
    tranStateTableOffset,
    commitLogOffset,
    commitOrRollback: String(commitOrRollback),
    fromTransactionCheck: String(fromTransactionCheck),
    msgId: '',
    transactionId: '',
  });
}

/** The CommitLog offset inside an offset message id (its last 16 hex digits). */
export function commitLogOffsetOfMsgId(msgId: string): string {
  return BigInt(`0x${msgId.slice(16)}`).toString();
}

export function lockBody(group: string, clientId: string, topic: string, queueIds: number[]): Buffer {
  const mqSet = queueIds.map((queueId) => ({ topic, brokerName: 'broker-a', queueId }));
  return Buffer.from(JSON.stringify({ consumerGroup: group, clientId, onlyThisBroker: false, mqSet }));
}

export function lockRequest(group: string, clientId: string, topic: string, queueIds: number[]): RemotingCommand {
  return createRequest(RequestCode.LockBatchMq, {}, lockBody(group, clientId, topic, queueIds));
}

export function unlockRequest(group: string, clientId: string, topic: string, queueIds: number[]): RemotingCommand {
  return createRequest(RequestCode.UnlockBatchMq, {}, lockBody(group, clientId, topic, queueIds));
}

/** Queue ids of a LockBatchResponseBody. */
export function lockedQueueIds(response: RemotingCommand): number[] {
  const body = JSON.parse((response.body ?? Buffer.from('{}')).toString()) as { lockOKMQSet?: { queueId: number }[] };
  return (body.lockOKMQSet ?? []).map((queue) => queue.queueId).sort((a, b) => a - b);
}

/** Parses a fastjson body whose map keys are MessageQueue objects into [queueKey, value] pairs. */
export function fastjsonQueueTable(text: string, tableName: string): Map<string, unknown> {
  const table = new Map<string, unknown>();
  const at = text.indexOf(`"${tableName}":{`);
  if (at < 0) return table;
  const entryPattern = /\{"brokerName":"([^"]*)","queueId":(\d+),"topic":"([^"]*)"\}:(\{[^{}]*\}|-?\d+)/g;
  entryPattern.lastIndex = at;
  for (let match = entryPattern.exec(text); match !== null; match = entryPattern.exec(text)) {
    table.set(`${match[3]}:${match[2]}`, JSON.parse(match[4] ?? 'null'));
  }
  return table;
}
