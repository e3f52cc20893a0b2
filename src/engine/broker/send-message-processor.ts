/**
 * SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320), after RocketMQ's
 * SendMessageProcessor: check the broker and topic (auto-creating it from the TBW102 template when
 * allowed), pick the queue, divert exhausted retries to the DLQ, append to the store and answer with
 * the offset message id, queue id and queue offset.
 */
import { normalizeHost, parseHostAddress } from '../common/host-address.js';
import type { HostAddress, MessageToStore } from '../common/message.js';
import { MessageProperty, decodeProperties } from '../common/properties.js';
import {
  DLQ_GROUP_TOPIC_PREFIX,
  RETRY_GROUP_TOPIC_PREFIX,
  SCHEDULE_TOPIC,
  TRANS_HALF_TOPIC,
  TRANS_OP_HALF_TOPIC,
  dlqTopicOf,
  topicNameProblem,
} from '../common/topic.js';
import type { RemotingChannel } from '../remoting/channel.js';
import { ResponseCode } from '../remoting/codes.js';
import { createResponse, type RemotingCommand } from '../remoting/command.js';
import { PutStatus, type PutResult } from '../store/api.js';
import type { BrokerContext } from './broker-context.js';
import { RequestError } from './request-error.js';
import { HeaderReader } from './request-header.js';
import type { ScheduleMessageService } from './schedule-message-service.js';
import { TIMER_TOPIC, requestedDeliverMs, type TimerMessageService } from './timer-message-service.js';
import { TransactionService } from './transaction-service.js';
import { PERM_READ_WRITE, type TopicConfig, isWriteable } from './topic-config-manager.js';

/** SendMessageRequestHeaderV2 field letters -> SendMessageRequestHeader names. */
const V2_FIELD_NAMES: Record<string, string> = {
  a: 'producerGroup',
  b: 'topic',
  c: 'defaultTopic',
  d: 'defaultTopicQueueNums',
  e: 'queueId',
  f: 'sysFlag',
  g: 'bornTimestamp',
  h: 'flag',
  i: 'properties',
  j: 'reconsumeTimes',
  k: 'unitMode',
  l: 'maxReconsumeTimes',
  m: 'batch',
  n: 'brokerName',
};

/** SendMessageRequestHeader names -> SendMessageRequestHeaderV2 letters (read in place, no copy). */
const V2_FIELD_LETTERS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(V2_FIELD_NAMES).map(([letter, name]) => [name, letter]),
);

/** Topics only the broker itself writes (TopicValidator.NOT_ALLOWED_SEND_TOPIC_SET). */
const NOT_ALLOWED_SEND_TOPICS = new Set([SCHEDULE_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC, TIMER_TOPIC]);

/** MessageConst.PROPERTY_CLUSTER: the broker records its cluster on every message it accepts. */
const PROPERTY_CLUSTER = 'CLUSTER';
const DEFAULT_REGION = 'DefaultRegion';

export interface SendMessageHeader {
  producerGroup: string;
  topic: string;
  defaultTopic: string;
  defaultTopicQueueNums: number;
  queueId: number;
  sysFlag: number;
  bornTimestamp: number;
  flag: number;
  properties: string;
  reconsumeTimes: number;
  unitMode: boolean;
  maxReconsumeTimes: number | undefined;
  batch: boolean;
}

/** Reads a v1 (long names) or v2 (letters) send header; v2 when the letters are present. */
export function decodeSendHeader(extFields: Readonly<Record<string, unknown>>, v2: boolean): SendMessageHeader {
  const header = v2 ? new HeaderReader(extFields, V2_FIELD_LETTERS) : new HeaderReader(extFields);
  return {
    producerGroup: header.name('producerGroup'),
    topic: header.string('topic'),
    defaultTopic: header.string('defaultTopic'),
    defaultTopicQueueNums: header.int('defaultTopicQueueNums'),
    queueId: header.int('queueId'),
    sysFlag: header.int('sysFlag'),
    bornTimestamp: header.long('bornTimestamp'),
    flag: header.int('flag'),
    properties: header.optionalString('properties') ?? '',
    reconsumeTimes: header.optionalInt('reconsumeTimes') ?? 0,
    unitMode: header.bool('unitMode', false),
    maxReconsumeTimes: header.optionalInt('maxReconsumeTimes'),
    batch: header.bool('batch', false),
  };
}

/** One message of a SEND_BATCH_MESSAGE body (MessageDecoder.encodeMessage). */
export interface BatchEntry {
  flag: number;
  body: Buffer;
  properties: string;
}

const BATCH_ENTRY_FIXED_BYTES = 4 + 4 + 4 + 4 + 4 + 2;

/**
 * Decodes a batch body: per message totalSize 4 | magicCode 4 | bodyCRC 4 | flag 4 | bodyLength 4 +
 * body | propertiesLength 2 + properties. Magic and CRC are not checked (clients write 0 there).
 */
export function decodeBatchBody(body: Buffer, maxCount: number): BatchEntry[] {
  const entries: BatchEntry[] = [];
  let at = 0;
  while (at < body.length) {
    if (entries.length >= maxCount) {
      throw new RequestError(ResponseCode.MessageIllegal, `batch holds more than ${maxCount} messages`);
    }
    if (body.length - at < BATCH_ENTRY_FIXED_BYTES) {
      throw new RequestError(ResponseCode.MessageIllegal, `batch body is truncated at byte ${at}`);
    }
    const totalSize = body.readInt32BE(at);
    const flag = body.readInt32BE(at + 12);
    const bodyLength = body.readInt32BE(at + 16);
    const bodyAt = at + 20;
    if (bodyLength < 0 || bodyAt + bodyLength + 2 > body.length) {
      throw new RequestError(ResponseCode.MessageIllegal, `batch message at byte ${at} has a bad body length`);
    }
    const propertiesLength = body.readUInt16BE(bodyAt + bodyLength);
    const propertiesAt = bodyAt + bodyLength + 2;
    const end = propertiesAt + propertiesLength;
    if (end > body.length || totalSize !== end - at) {
      throw new RequestError(ResponseCode.MessageIllegal, `batch message at byte ${at} has inconsistent lengths`);
    }
    entries.push({
      flag,
      body: body.subarray(bodyAt, bodyAt + bodyLength),
      properties: body.toString('utf8', propertiesAt, end),
    });
    at = end;
  }
  if (entries.length === 0) throw new RequestError(ResponseCode.MessageIllegal, 'batch holds no messages');
  return entries;
}

/** PutStatus -> ResponseCode (SendMessageProcessor.handlePutMessageResult). */
export function responseCodeOfPutStatus(status: PutStatus): number {
  switch (status) {
    case PutStatus.Ok:
      return ResponseCode.Success;
    case PutStatus.FlushDiskTimeout:
      return ResponseCode.FlushDiskTimeout;
    case PutStatus.MessageIllegal:
    case PutStatus.PropertiesSizeExceeded:
      return ResponseCode.MessageIllegal;
    case PutStatus.ServiceNotAvailable:
      return ResponseCode.ServiceNotAvailable;
    default:
      return ResponseCode.SystemError;
  }
}

/** Born hosts by channel: parsed once per connection rather than once per message. */
const bornHosts = new WeakMap<RemotingChannel, HostAddress>();

export function bornHostOf(channel: RemotingChannel): HostAddress {
  let bornHost = bornHosts.get(channel);
  if (bornHost === undefined) {
    try {
      const address = parseHostAddress(channel.remoteAddress);
      bornHost = { host: normalizeHost(address.host), port: address.port };
    } catch {
      bornHost = { host: '0.0.0.0', port: 0 };
    }
    bornHosts.set(channel, bornHost);
  }
  return bornHost;
}

/** The services a single send may be diverted to: half messages, delay levels, delivery times. */
export interface SendDiversions {
  readonly schedule: ScheduleMessageService;
  readonly timer: TimerMessageService;
  readonly transactions: TransactionService;
  /** SYNC_MASTER: the code to answer a stored send with once slaves have (or have not) its bytes. */
  readonly replication?: { readonly syncReplication: boolean; awaitReplication(endOffset: number): Promise<number> };
}

export class SendMessageProcessor {
  /** Next queue per topic for sends that leave the choice to the broker. */
  private readonly nextQueue = new Map<string, number>();

  constructor(
    private readonly ctx: BrokerContext,
    private readonly diversions: SendDiversions,
  ) {}

  async process(
    request: RemotingCommand,
    channel: RemotingChannel,
    kind: 'v1' | 'v2' | 'batch',
  ): Promise<RemotingCommand> {
    const extFields = request.extFields as Readonly<Record<string, unknown>>;
    const v2 = kind === 'v2' || (kind === 'batch' && extFields['b'] !== undefined && extFields['topic'] === undefined);
    const header = decodeSendHeader(extFields, v2);
    const batch =
      kind === 'batch'
        ? decodeBatchBody(request.body ?? Buffer.alloc(0), this.ctx.config.maxBatchMessageCount)
        : undefined;
    const topicConfig = this.checkTopic(header, channel);
    let topic = header.topic;
    let queueId = this.chooseQueue(header, topicConfig, channel);
    let toDlq = false;

    // A client that could not send a message back resends it to %RETRY%<group> itself; once it has
    // been retried often enough it belongs in the DLQ (SendMessageProcessor.handleRetryAndDLQ).
    if (topic.startsWith(RETRY_GROUP_TOPIC_PREFIX)) {
      if (batch !== undefined) {
        throw new RequestError(ResponseCode.MessageIllegal, 'batch request does not support retry group topic');
      }
      const maxReconsumeTimes = header.maxReconsumeTimes ?? this.ctx.config.maxReconsumeTimes;
      if (header.reconsumeTimes >= maxReconsumeTimes) {
        topic = dlqTopicOf(topic.slice(RETRY_GROUP_TOPIC_PREFIX.length));
        queueId = 0;
        toDlq = true;
        this.ctx.topics.createInternal(topic, 1, PERM_READ_WRITE);
      }
    }

    const bornHost = bornHostOf(channel);
    let result: PutResult;
    let extraFields: Record<string, string> = {};
    if (batch === undefined) {
      const properties = decodeProperties(header.properties);
      const body = request.body ?? Buffer.alloc(0);
      const message = this.toStore(topic, queueId, header, bornHost, header.flag, body, properties);
      if (toDlq) delete message.properties[MessageProperty.DelayTimeLevel];
      const diverted = this.divert(message);
      result = await this.ctx.store.putMessage(diverted.message);
      if (result.status === PutStatus.Ok || result.status === PutStatus.FlushDiskTimeout) diverted.stored?.(result);
      extraFields = diverted.fields;
    } else {
      const decoded = batch.map((entry) => decodeProperties(entry.properties));
      for (const properties of decoded) {
        // As RocketMQ's MessageBatch: a half or delayed message cannot travel in a batch.
        if (TransactionService.isHalf(properties) || (Number(properties[MessageProperty.DelayTimeLevel]) || 0) > 0) {
          throw new RequestError(
            ResponseCode.MessageIllegal,
            'batch messages do not support transactions or delay levels',
          );
        }
      }
      const messages = new Array<MessageToStore>(batch.length);
      for (let i = 0; i < batch.length; i++) {
        const entry = batch[i] as BatchEntry;
        messages[i] = this.toStore(topic, queueId, header, bornHost, entry.flag, entry.body, decoded[i] ?? {});
      }
      result = await this.ctx.store.putMessages(messages);
    }
    let replicationCode: number | undefined;
    if (result.status === PutStatus.Ok && this.diversions.replication?.syncReplication === true) {
      replicationCode = await this.diversions.replication.awaitReplication(result.commitLogOffset + result.wroteBytes);
    }
    return this.answer(request, result, queueId, extraFields, replicationCode);
  }

  /**
   * A message as a plain literal of one shape, its decoded properties given CLUSTER in place: object
   * spreads (or a closure per request) here cost more than the rest of the request handling.
   */
  private toStore(
    topic: string,
    queueId: number,
    header: SendMessageHeader,
    bornHost: HostAddress,
    flag: number,
    body: Buffer,
    properties: Record<string, string>,
  ): MessageToStore {
    properties[PROPERTY_CLUSTER] = this.ctx.config.clusterName;
    return {
      topic,
      queueId,
      flag,
      body,
      properties,
      sysFlag: header.sysFlag,
      bornTimestamp: header.bornTimestamp,
      bornHost,
      reconsumeTimes: header.reconsumeTimes,
      preparedTransactionOffset: 0,
    };
  }

  /**
   * A half message goes to the half topic, a delay level to the schedule topic, a delivery time to
   * the timer topic (in that order of precedence, as RocketMQ's CommitLog checks them).
   */
  private divert(message: MessageToStore): {
    message: MessageToStore;
    stored?: (result: PutResult) => void;
    fields: Record<string, string>;
  } {
    const { properties } = message;
    if (TransactionService.isHalf(properties)) {
      const half = this.diversions.transactions.divert(message);
      const uniqueKey = properties[MessageProperty.UniqueClientMessageId];
      return {
        message: half,
        stored: (result) => this.diversions.transactions.track(half, result.queueOffset, result.commitLogOffset),
        fields: uniqueKey === undefined ? {} : { transactionId: uniqueKey },
      };
    }
    const delayText = properties[MessageProperty.DelayTimeLevel];
    if (delayText !== undefined) {
      const level = Number(delayText);
      if (!Number.isInteger(level)) {
        throw new RequestError(ResponseCode.MessageIllegal, `DELAY "${delayText.slice(0, 32)}" is not a delay level`);
      }
      if (level > 0) return { message: this.diversions.schedule.divert(message, level), fields: {} };
    }
    const nowMs = Date.now();
    const deliverMs = requestedDeliverMs(properties, nowMs);
    if (deliverMs !== undefined) {
      const timed = this.diversions.timer.divert(message, deliverMs, nowMs);
      if (timed.topic === TIMER_TOPIC) {
        return {
          message: timed,
          stored: (result) => this.diversions.timer.track(deliverMs, result.queueOffset, result.commitLogOffset),
          fields: {},
        };
      }
      return { message: timed, fields: {} };
    }
    return { message, fields: {} };
  }

  private checkTopic(header: SendMessageHeader, channel: RemotingChannel): TopicConfig {
    const { topic } = header;
    if (this.ctx.store.isReplica()) {
      // RocketMQ's store refuses puts in slave mode; refusing before topic auto-creation keeps the slave clean.
      throw new RequestError(
        ResponseCode.ServiceNotAvailable,
        `the broker[${this.ctx.config.brokerName}] is a slave: messages are not put to the slave`,
      );
    }
    if (!isWriteable(this.ctx.brokerPermission)) {
      throw new RequestError(
        ResponseCode.NoPermission,
        `the broker[${this.ctx.config.brokerName}] sending message is forbidden`,
      );
    }
    const problem = topicNameProblem(topic);
    if (problem !== undefined) throw new RequestError(ResponseCode.SystemError, problem);
    if (NOT_ALLOWED_SEND_TOPICS.has(topic) || topic.startsWith(DLQ_GROUP_TOPIC_PREFIX)) {
      throw new RequestError(ResponseCode.NoPermission, `Sending message to topic[${topic}] is forbidden.`);
    }
    let config = this.ctx.topics.get(topic);
    if (config === undefined) {
      if (topic.startsWith(RETRY_GROUP_TOPIC_PREFIX)) {
        config = this.ctx.topics.createInternal(topic, 1, PERM_READ_WRITE);
      } else if (topicNameProblem(header.defaultTopic) === undefined) {
        config = this.ctx.topics.createOnSend(topic, header.defaultTopic, header.defaultTopicQueueNums, 0);
      }
    }
    if (config === undefined) {
      const why = this.ctx.config.autoCreateTopicEnable ? '' : ' (auto-create of topics is disabled on this broker)';
      throw new RequestError(
        ResponseCode.TopicNotExist,
        `topic[${topic}] not exist, apply first please!${why} Producer: ${channel.remoteAddress}`,
      );
    }
    if (!isWriteable(config.perm)) {
      throw new RequestError(ResponseCode.NoPermission, `the topic[${topic}] sending message is forbidden`);
    }
    return config;
  }

  private chooseQueue(header: SendMessageHeader, config: TopicConfig, channel: RemotingChannel): number {
    const queueCount = Math.max(config.writeQueueNums, config.readQueueNums);
    if (header.queueId >= queueCount) {
      throw new RequestError(
        ResponseCode.SystemError,
        `request queueId[${header.queueId}] is illegal, topic ${config.topicName} has ${queueCount} queues. Producer: ${channel.remoteAddress}`,
      );
    }
    if (header.queueId >= 0) return header.queueId;
    if (config.writeQueueNums <= 0) {
      throw new RequestError(ResponseCode.NoPermission, `topic[${config.topicName}] has no write queues`);
    }
    const next = this.nextQueue.get(config.topicName) ?? 0;
    this.nextQueue.set(config.topicName, (next + 1) % config.writeQueueNums);
    return next % config.writeQueueNums;
  }

  private answer(
    request: RemotingCommand,
    result: PutResult,
    queueId: number,
    extraFields: Record<string, string>,
    replicationCode?: number,
  ): RemotingCommand {
    // A stored message whose slaves lag is still sent (RocketMQ: FLUSH_SLAVE_TIMEOUT and
    // SLAVE_NOT_AVAILABLE carry the send result), with the replication code.
    const code =
      replicationCode !== undefined && replicationCode !== ResponseCode.Success
        ? replicationCode
        : responseCodeOfPutStatus(result.status);
    if (result.status !== PutStatus.Ok && result.status !== PutStatus.FlushDiskTimeout) {
      this.ctx.counters.sendFailures++;
      const remark = result.error?.message ?? `put message failed: ${result.status}`;
      return createResponse(request, code, remark);
    }
    this.ctx.counters.putMessages += result.messageCount;
    const fields: Record<string, string> = {
      msgId: result.msgIds.join(','),
      queueId: String(queueId),
      queueOffset: String(result.queueOffset),
      MSG_REGION: DEFAULT_REGION,
      TRACE_ON: 'true',
    };
    Object.assign(fields, extraFields);
    return createResponse(request, code, undefined, fields);
  }
}
