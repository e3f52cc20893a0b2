/**
 * The producer (RocketMQ DefaultMQProducer): turns Messages into SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE
 * requests, picks queues round robin across the brokers' write queues (or asks a selector), retries
 * on another broker when one fails, and auto-creates unknown topics through the TBW102 template.
 */
import { deflateSync } from 'node:zlib';
import { ErrorCode, isRbError, RbError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { MessageSysFlag, type Message } from '../common/message.js';
import { encodeProperties, KEY_SEPARATOR, MessageProperty, type Properties } from '../common/properties.js';
import { AUTO_CREATE_TOPIC_KEY_TOPIC, validateTopicName } from '../common/topic.js';
import { RequestCode, ResponseCode } from '../remoting/codes.js';
import { createRequest, markOneway, type RemotingCommand } from '../remoting/command.js';
import { remoteError } from './broker-api.js';
import { ClientInstance, clientInstanceOptionsOf } from './client-instance.js';
import { createUniqueMessageId } from './message-id.js';
import {
  cachedWriteQueuesOf,
  masterAddressOf,
  type MessageQueue,
  type TopicRouteData,
  writeQueuesOf,
} from './route.js';
import type { Transport } from './transport.js';

const log = createLogger('producer');

export type SendStatus = 'SEND_OK' | 'FLUSH_DISK_TIMEOUT' | 'FLUSH_SLAVE_TIMEOUT' | 'SLAVE_NOT_AVAILABLE';

export interface SendResult {
  status: SendStatus;
  /** The producer's unique id (UNIQ_KEY); comma-joined for a batch. */
  msgId: string;
  /** The broker's offset id (store host + CommitLog offset); comma-joined for a batch. */
  offsetMsgId: string;
  /** The transaction id the broker returned (half messages), else undefined. */
  transactionId?: string;
  messageQueue: MessageQueue;
  /** Queue offset of the (first) message. */
  queueOffset: number;
}

export interface SendOptions {
  /** Send to exactly this queue (no retry on another broker). */
  queue?: MessageQueue;
  /** Picks the queue from the topic's write queues (RocketMQ MessageQueueSelector). */
  selector?: (queues: readonly MessageQueue[], message: Message) => MessageQueue;
  /** RocketMQ delay level 1..18 (`1s 5s 10s 30s 1m ...` by default); sets the DELAY property. */
  delayLevel?: number;
  /** Deliver at this time (ms since the epoch); sets TIMER_DELIVER_MS (RocketMQ 5 timer messages). */
  deliverAt?: number;
  /** Deliver this many ms from now; sent as TIMER_DELIVER_MS = now + delayMs. */
  delayMs?: number;
}

/** RocketMQ's number of delay levels (MessageStoreConfig.messageDelayLevel). */
export const MAX_DELAY_LEVEL = 18;

/** The message with the delay properties the send options ask for (at most one kind of delay). */
export function applyDelay(message: Message, options: SendOptions): Message {
  if (options.delayLevel === undefined && options.deliverAt === undefined && options.delayMs === undefined) {
    return message;
  }
  const kinds = [options.delayLevel, options.deliverAt, options.delayMs].filter((value) => value !== undefined);
  if (kinds.length === 0) return message;
  if (kinds.length > 1) {
    throw new RbError(ErrorCode.MessageIllegal, 'give only one of delayLevel, deliverAt and delayMs');
  }
  const properties: Properties = { ...message.properties };
  if (options.delayLevel !== undefined) {
    const level = options.delayLevel;
    if (!Number.isInteger(level) || level < 1 || level > MAX_DELAY_LEVEL) {
      throw new RbError(ErrorCode.MessageIllegal, `delayLevel must be an integer 1..${MAX_DELAY_LEVEL}, not ${level}`);
    }
    properties[MessageProperty.DelayTimeLevel] = String(level);
  } else {
    const deliverAt = options.deliverAt ?? Date.now() + (options.delayMs ?? 0);
    if (!Number.isFinite(deliverAt) || deliverAt < 0) {
      throw new RbError(ErrorCode.MessageIllegal, `delivery time ${deliverAt} is not a valid timestamp`);
    }
    properties[MessageProperty.TimerDeliverMs] = String(Math.floor(deliverAt));
  }
  return { ...message, properties };
}

export interface ProducerOptions {
  group: string;
  nameServers: readonly string[];
  transport?: Transport;
  /** Per attempt (RocketMQ sendMsgTimeout 3000 ms). */
  sendTimeoutMs?: number;
  /** Extra attempts after a failed send, each on another broker when possible (RocketMQ 2). */
  retryTimesWhenSendFailed?: number;
  /** Bodies larger than this are zlib-compressed (RocketMQ compressMsgBodyOverHowmuch); no compression when omitted. */
  compressOverBytes?: number;
  /** Queues of an auto-created topic (RocketMQ defaultTopicQueueNums 4). */
  defaultTopicQueueNums?: number;
  maxMessageBytes?: number;
  instanceName?: string;
  heartbeatIntervalMs?: number;
  routeRefreshIntervalMs?: number;
}

/** Response codes after which another attempt may succeed (DefaultMQProducerImpl.sendDefaultImpl). */
const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  ResponseCode.TopicNotExist,
  ResponseCode.ServiceNotAvailable,
  ResponseCode.SystemError,
  ResponseCode.SystemBusy,
  ResponseCode.NoPermission,
  ResponseCode.NoBuyerId,
  ResponseCode.NotInCurrentUnit,
]);

const STATUS_BY_CODE: ReadonlyMap<number, SendStatus> = new Map([
  [ResponseCode.Success, 'SEND_OK'],
  [ResponseCode.FlushDiskTimeout, 'FLUSH_DISK_TIMEOUT'],
  [ResponseCode.FlushSlaveTimeout, 'FLUSH_SLAVE_TIMEOUT'],
  [ResponseCode.SlaveNotAvailable, 'SLAVE_NOT_AVAILABLE'],
]);

/** A send failure the broker reported, carrying its response code. */
class SendRefused extends RbError {
  constructor(
    readonly responseCode: number,
    response: RemotingCommand,
  ) {
    super(ErrorCode.RemoteError, remoteError('send', response).message);
  }
}

/** Encoded message bytes and header fields shared by every attempt. */
interface PreparedSend {
  topic: string;
  body: Buffer;
  properties: string;
  sysFlag: number;
  flag: number;
  batch: boolean;
  uniqueIds: string[];
}

/**
 * A batch body (MessageDecoder.encodeMessages): per message totalSize 4, magic 4 (0), bodyCRC 4 (0),
 * flag 4, bodyLength 4 + body, propertiesLength 2 + properties. The broker fills in the rest.
 */
export function encodeBatch(messages: readonly { body: Buffer; flag: number; properties: string }[]): Buffer {
  // Measured first and written once into one buffer: no buffer per message and no concatenation.
  const propertiesLengths = messages.map((message) => Buffer.byteLength(message.properties, 'utf8'));
  let batchBytes = 0;
  for (const [i, message] of messages.entries()) batchBytes += 22 + message.body.length + (propertiesLengths[i] ?? 0);
  const batch = Buffer.allocUnsafe(batchBytes);
  let p = 0;
  for (const [i, message] of messages.entries()) {
    const propertiesBytes = propertiesLengths[i] ?? 0;
    p = batch.writeInt32BE(22 + message.body.length + propertiesBytes, p);
    p = batch.writeInt32BE(0, p);
    p = batch.writeInt32BE(0, p);
    p = batch.writeInt32BE(message.flag | 0, p);
    p = batch.writeInt32BE(message.body.length, p);
    p += message.body.copy(batch, p);
    p = batch.writeUInt16BE(propertiesBytes, p);
    p += batch.write(message.properties, p, 'utf8');
  }
  return batch;
}

/** Sends messages to topics through the brokers the NameServer names. */
export class Producer {
  readonly group: string;
  protected readonly instance: ClientInstance;
  private readonly sendTimeoutMs: number;
  private readonly retryTimes: number;
  private readonly compressOverBytes: number | undefined;
  private readonly defaultTopicQueueNums: number;
  private readonly maxMessageBytes: number;
  /** Topics that exist only through the TBW102 template until the broker creates them. */
  private readonly autoCreateTopics = new Set<string>();
  /** When each auto-created topic's route was last dropped, so the NameServer is not asked on every send. */
  private readonly routeDroppedAtMs = new Map<string, number>();
  private roundRobin = Math.floor(Math.random() * 1024);
  private running = false;

  constructor(options: ProducerOptions) {
    this.group = options.group;
    this.sendTimeoutMs = options.sendTimeoutMs ?? 3000;
    this.instance = new ClientInstance({ ...clientInstanceOptionsOf(options), requestTimeoutMs: this.sendTimeoutMs });
    this.retryTimes = options.retryTimesWhenSendFailed ?? 2;
    this.compressOverBytes = options.compressOverBytes;
    this.defaultTopicQueueNums = options.defaultTopicQueueNums ?? 4;
    this.maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
  }

  get clientId(): string {
    return this.instance.clientId;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.instance.addProducer(this.group);
    this.instance.start();
    this.running = true;
  }

  async shutdown(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.instance.shutdown();
    this.instance.removeProducer(this.group);
  }

  /** Sends one message and waits for the broker's answer; retries on another broker on failure. */
  async send(message: Message, options: SendOptions = {}): Promise<SendResult> {
    this.checkRunning();
    const prepared = this.prepare([applyDelay(message, options)], false);
    return this.sendWithRetry(prepared, message, options, this.retryTimes);
  }

  /**
   * Like send, without blocking the caller: many may be in flight. Calls `callback` when given, and
   * resolves (or rejects) the returned promise either way.
   */
  sendAsync(
    message: Message,
    options: SendOptions = {},
    callback?: (err: Error | undefined, result?: SendResult) => void,
  ): Promise<SendResult> {
    const promise = this.send(message, options);
    if (callback !== undefined) {
      promise.then(
        (result) => callback(undefined, result),
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
      // The callback has the error; do not also report an unhandled rejection.
      promise.catch(() => undefined);
    }
    return promise;
  }

  /** Fire and forget: one attempt, no answer awaited from the broker. */
  async sendOneway(message: Message, options: SendOptions = {}): Promise<void> {
    this.checkRunning();
    const prepared = this.prepare([applyDelay(message, options)], false);
    const { queue, address } = await this.pickQueue(prepared.topic, message, options, undefined);
    await this.instance.transport.invokeOneway(address, markOneway(this.buildRequest(prepared, queue)));
  }

  /** Sends messages of one topic as one SEND_BATCH_MESSAGE; they land in one queue, in order. */
  async sendBatch(messages: readonly Message[], options: SendOptions = {}): Promise<SendResult> {
    this.checkRunning();
    if (messages.length === 0) throw new RbError(ErrorCode.MessageIllegal, 'a batch needs at least one message');
    const topic = messages[0]?.topic;
    if (messages.some((message) => message.topic !== topic)) {
      throw new RbError(ErrorCode.MessageIllegal, 'every message of a batch must have the same topic');
    }
    const prepared = this.prepare(messages, true);
    return this.sendWithRetry(prepared, messages[0] as Message, options, this.retryTimes);
  }

  /** The topic's write queues (for selectors and tests). */
  async fetchPublishQueues(topic: string): Promise<MessageQueue[]> {
    const route = await this.publishRoute(topic);
    return writeQueuesOf(topic, route);
  }

  private checkRunning(): void {
    if (!this.running) throw new RbError(ErrorCode.ClientState, 'producer is not started');
  }

  private messageProperties(message: Message): Properties {
    const properties: Properties = { ...message.properties };
    if (message.tags !== undefined && message.tags.length > 0) properties[MessageProperty.Tags] = message.tags;
    if (message.keys !== undefined && message.keys.length > 0) {
      properties[MessageProperty.Keys] = message.keys.join(KEY_SEPARATOR);
    }
    properties[MessageProperty.UniqueClientMessageId] ??= createUniqueMessageId();
    properties[MessageProperty.WaitStoreMsgOk] ??= 'true';
    return properties;
  }

  private prepare(messages: readonly Message[], batch: boolean): PreparedSend {
    const first = messages[0] as Message;
    validateTopicName(first.topic);
    const encoded = messages.map((message) => {
      if (message.body.length === 0) throw new RbError(ErrorCode.MessageIllegal, 'message body is empty');
      if (message.body.length > this.maxMessageBytes) {
        throw new RbError(
          ErrorCode.MessageTooLarge,
          `body of ${message.body.length} bytes exceeds ${this.maxMessageBytes}`,
        );
      }
      const properties = this.messageProperties(message);
      return { properties, text: encodeProperties(properties), flag: message.flag ?? 0 };
    });
    const uniqueIds = encoded.map((each) => each.properties[MessageProperty.UniqueClientMessageId] as string);
    if (batch) {
      const body = encodeBatch(
        messages.map((message, i) => ({
          body: message.body,
          flag: message.flag ?? 0,
          properties: encoded[i]?.text ?? '',
        })),
      );
      if (body.length > this.maxMessageBytes) {
        throw new RbError(ErrorCode.MessageTooLarge, `batch of ${body.length} bytes exceeds ${this.maxMessageBytes}`);
      }
      const properties = encodeProperties({ [MessageProperty.WaitStoreMsgOk]: 'true' });
      return { topic: first.topic, body, properties, sysFlag: 0, flag: 0, batch, uniqueIds };
    }
    let body = first.body;
    let sysFlag = 0;
    // A half message of a transaction (DefaultMQProducerImpl.sendKernelImpl).
    if (encoded[0]?.properties[MessageProperty.TransactionPrepared] === 'true') {
      sysFlag |= MessageSysFlag.TransactionPreparedType;
    }
    if (this.compressOverBytes !== undefined && body.length > this.compressOverBytes) {
      body = deflateSync(body);
      sysFlag |= MessageSysFlag.Compressed;
    }
    const only = encoded[0];
    return { topic: first.topic, body, properties: only?.text ?? '', sysFlag, flag: only?.flag ?? 0, batch, uniqueIds };
  }

  private buildRequest(prepared: PreparedSend, queue: MessageQueue): RemotingCommand {
    const fields: Record<string, string> = {
      a: this.group,
      b: prepared.topic,
      c: AUTO_CREATE_TOPIC_KEY_TOPIC,
      d: String(this.defaultTopicQueueNums),
      e: String(queue.queueId),
      f: String(prepared.sysFlag),
      g: String(Date.now()),
      h: String(prepared.flag),
      i: prepared.properties,
      j: '0',
      k: 'false',
      m: String(prepared.batch),
      n: queue.brokerName,
    };
    const code = prepared.batch ? RequestCode.SendBatchMessage : RequestCode.SendMessageV2;
    return createRequest(code, fields, prepared.body);
  }

  /** The route to publish with: the topic's own, or TBW102's when the topic does not exist yet. */
  private async publishRoute(topic: string, refresh = false): Promise<TopicRouteData> {
    let route = await this.instance.routeOf(topic, refresh);
    if (route !== undefined && cachedWriteQueuesOf(topic, route).length > 0) {
      this.autoCreateTopics.delete(topic);
      this.routeDroppedAtMs.delete(topic);
      return route;
    }
    route = await this.instance.routeOf(AUTO_CREATE_TOPIC_KEY_TOPIC, refresh);
    if (route === undefined || cachedWriteQueuesOf(topic, route).length === 0) {
      throw new RbError(
        ErrorCode.NoRoute,
        `no route for topic ${topic} and no ${AUTO_CREATE_TOPIC_KEY_TOPIC} to create it`,
      );
    }
    this.autoCreateTopics.add(topic);
    // The template's queues, capped at defaultTopicQueueNums per broker (TopicRouteData from default topic).
    return {
      ...route,
      queueDatas: route.queueDatas.map((data) => ({
        ...data,
        readQueueNums: Math.min(data.readQueueNums, this.defaultTopicQueueNums),
        writeQueueNums: Math.min(data.writeQueueNums, this.defaultTopicQueueNums),
      })),
    };
  }

  private async pickQueue(
    topic: string,
    message: Message,
    options: SendOptions,
    avoidBroker: string | undefined,
    refresh = false,
  ): Promise<{ queue: MessageQueue; address: string; route: TopicRouteData }> {
    const route = await this.publishRoute(topic, refresh);
    let queue: MessageQueue | undefined;
    if (options.queue !== undefined) {
      queue = options.queue;
    } else {
      const queues = cachedWriteQueuesOf(topic, route);
      if (options.selector !== undefined) {
        queue = options.selector(queues, message);
      } else {
        const start = this.roundRobin++ & 0x7fffffff;
        for (let i = 0; i < queues.length && queue === undefined; i++) {
          const candidate = queues[(start + i) % queues.length];
          if (candidate !== undefined && candidate.brokerName !== avoidBroker) queue = candidate;
        }
        queue ??= queues[start % queues.length];
      }
    }
    if (queue === undefined) throw new RbError(ErrorCode.NoRoute, `topic ${topic} has no write queue`);
    const address = masterAddressOf(route, queue.brokerName) ?? this.instance.brokerAddress(queue.brokerName);
    if (address === undefined) throw new RbError(ErrorCode.NoRoute, `broker ${queue.brokerName} has no master`);
    return { queue, address, route };
  }

  private async sendWithRetry(
    prepared: PreparedSend,
    message: Message,
    options: SendOptions,
    retryTimes: number,
  ): Promise<SendResult> {
    const attempts = options.queue !== undefined ? 1 : 1 + retryTimes;
    let lastBroker: string | undefined;
    let lastError: unknown;
    let refresh = false;
    for (let attempt = 0; attempt < attempts; attempt++) {
      let queue: MessageQueue | undefined;
      try {
        const picked = await this.pickQueue(prepared.topic, message, options, lastBroker, refresh);
        queue = picked.queue;
        const response = await this.instance.invoke(
          picked.address,
          this.buildRequest(prepared, queue),
          this.sendTimeoutMs,
        );
        return this.toSendResult(prepared, queue, response);
      } catch (err) {
        lastError = err;
        lastBroker = queue?.brokerName;
        const retryable = !(err instanceof SendRefused) || RETRYABLE_CODES.has(err.responseCode);
        if (err instanceof SendRefused && err.responseCode === ResponseCode.TopicNotExist) refresh = true;
        if (isRbError(err, ErrorCode.NoRoute)) refresh = true;
        if (!retryable || isRbError(err, ErrorCode.TopicInvalid)) break;
        log.debug({ err, attempt, broker: lastBroker }, 'send failed; retrying');
      }
    }
    if (lastError instanceof Error) throw lastError;
    throw new RbError(ErrorCode.RemoteError, `send to ${prepared.topic} failed`, { cause: lastError });
  }

  private toSendResult(prepared: PreparedSend, queue: MessageQueue, response: RemotingCommand): SendResult {
    const status = STATUS_BY_CODE.get(response.code);
    if (status === undefined) throw new SendRefused(response.code, response);
    const queueId = Number(response.extFields['queueId'] ?? queue.queueId);
    if (this.autoCreateTopics.has(prepared.topic)) {
      // The broker created the topic: look for its real route, at most once a second.
      const now = Date.now();
      if (now - (this.routeDroppedAtMs.get(prepared.topic) ?? 0) >= 1000) {
        this.routeDroppedAtMs.set(prepared.topic, now);
        this.instance.dropRoute(prepared.topic);
      }
    }
    const result: SendResult = {
      status,
      msgId: prepared.uniqueIds.join(','),
      offsetMsgId: response.extFields['msgId'] ?? '',
      messageQueue: { topic: prepared.topic, brokerName: queue.brokerName, queueId },
      queueOffset: Number(response.extFields['queueOffset'] ?? -1),
    };
    const transactionId = response.extFields['transactionId'];
    if (transactionId !== undefined && transactionId.length > 0) result.transactionId = transactionId;
    return result;
  }
}
