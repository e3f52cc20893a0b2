/**
 * The producer (RocketMQ DefaultMQProducer): turns Messages into SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE
 * requests, picks queues round robin across the brokers' write queues (or asks a selector), retries
 * on another broker when one fails, and auto-creates unknown topics through the TBW102 template.
 * A broker address that could not be reached, or answered slowly, is avoided by the round robin for
 * a while (LatencyFaultTolerance), and the topic's route is fetched again so a failover is seen.
 */
import { deflateSync } from 'node:zlib';
import { ErrorCode, isRbError, RbError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { MessageSysFlag, type Message } from '../common/message.js';
import {
  encodeProperties,
  KEY_SEPARATOR,
  MessageProperty,
  NAME_VALUE_SEPARATOR,
  PROPERTY_SEPARATOR,
  type Properties,
} from '../common/properties.js';
import { AUTO_CREATE_TOPIC_KEY_TOPIC, validateTopicName } from '../common/topic.js';
import { RequestCode, ResponseCode, SerializeType } from '../remoting/codes.js';
import { createRequest, markOneway, type RemotingCommand } from '../remoting/command.js';
import { remoteError } from './broker-api.js';
import { ClientInstance, clientInstanceOptionsOf } from './client-instance.js';
import { isUnreachable, LatencyFaultTolerance, type LatencyFaultOptions } from './latency-fault-tolerance.js';
import { createUniqueMessageId } from './message-id.js';
import {
  cachedWriteQueuesOf,
  masterAddressOf,
  type MessageQueue,
  Perm,
  type TopicRouteData,
  writeQueuesOf,
} from './route.js';
import type { Transport } from './transport.js';

const log = createLogger('producer');

/** Per route object: whether a writable broker of it has no master (a failover under way). */
const masterlessRoutes = new WeakMap<TopicRouteData, boolean>();

function hasMasterlessBroker(route: TopicRouteData): boolean {
  let masterless = masterlessRoutes.get(route);
  if (masterless === undefined) {
    masterless = route.queueDatas.some(
      (data) => (data.perm & Perm.Write) !== 0 && masterAddressOf(route, data.brokerName) === undefined,
    );
    masterlessRoutes.set(route, masterless);
  }
  return masterless;
}

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
  /** After a broker could not be reached, the topic's route is fetched again at most this often (ms; 200). */
  failureRouteRefreshIntervalMs?: number;
  /**
   * Round robin skips broker addresses that recently failed or answered slowly (RocketMQ
   * sendLatencyFaultEnable, off there by default; on here). When every broker is avoided one is
   * still picked.
   */
  sendLatencyFaultEnable?: boolean;
  /** How long (ms) an address is avoided after a connection error or timeout (default 30 s). */
  faultIsolationMs?: number;
  /** Send latency thresholds (ms), ascending (RocketMQ latencyMax: 50 100 550 1000 2000 3000 15000). */
  latencyMaxMs?: readonly number[];
  /** How long (ms) an address is avoided after a send that slow (RocketMQ: 0 0 30 s 60 s 120 s 180 s 600 s). */
  notAvailableDurationMs?: readonly number[];
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
  /** sysFlag and flag as header text, converted once rather than on every attempt. */
  sysFlag: string;
  flag: string;
  batch: boolean;
  /** The producer's unique id(s): the result's msgId, comma-joined for a batch. */
  msgId: string;
}

const PROPERTY_END = PROPERTY_SEPARATOR;
const TAGS_PREFIX = MessageProperty.Tags + NAME_VALUE_SEPARATOR;
const KEYS_PREFIX = MessageProperty.Keys + NAME_VALUE_SEPARATOR;
const UNIQUE_ID_PREFIX = MessageProperty.UniqueClientMessageId + NAME_VALUE_SEPARATOR;
/** WAIT=true, what every send asks for unless the message says otherwise. */
const WAIT_TRUE = MessageProperty.WaitStoreMsgOk + NAME_VALUE_SEPARATOR + 'true' + PROPERTY_SEPARATOR;

/** A message's wire properties and the unique id they carry. */
interface EncodedProperties {
  text: string;
  uniqueId: string;
}

/**
 * The properties text of a message as it goes on the wire: its own properties, TAGS and KEYS from
 * the message fields (overriding same-named properties in place), UNIQ_KEY and WAIT unless given.
 * The same text encodeProperties would write for that merged object, built without copying the
 * properties into a new object first (that copy was a large part of the client's cost per send).
 */
export function encodeSendProperties(message: Message): EncodedProperties {
  const tags = message.tags !== undefined && message.tags.length > 0 ? message.tags : undefined;
  const keys = message.keys !== undefined && message.keys.length > 0 ? message.keys.join(KEY_SEPARATOR) : undefined;
  const own = message.properties;
  let text = '';
  let uniqueId: string | undefined;
  let hasTags = false;
  let hasKeys = false;
  let hasWait = false;
  if (own !== undefined) {
    for (const name in own) {
      if (!Object.hasOwn(own, name)) continue;
      let value = own[name];
      if (name === MessageProperty.Tags) {
        hasTags = true;
        if (tags !== undefined) value = tags;
      } else if (name === MessageProperty.Keys) {
        hasKeys = true;
        if (keys !== undefined) value = keys;
      } else if (name === MessageProperty.UniqueClientMessageId) {
        value ??= createUniqueMessageId();
        uniqueId = value;
      } else if (name === MessageProperty.WaitStoreMsgOk) {
        hasWait = true;
        value ??= 'true';
      }
      text += name + NAME_VALUE_SEPARATOR + value + PROPERTY_SEPARATOR;
    }
  }
  if (tags !== undefined && !hasTags) text += TAGS_PREFIX + tags + PROPERTY_END;
  if (keys !== undefined && !hasKeys) text += KEYS_PREFIX + keys + PROPERTY_END;
  if (uniqueId === undefined) {
    uniqueId = createUniqueMessageId();
    text += UNIQUE_ID_PREFIX + uniqueId + PROPERTY_END;
  }
  if (!hasWait) text += WAIT_TRUE;
  return { text, uniqueId };
}

/** The properties text of a batch request's own header (the messages carry theirs in the body). */
const BATCH_HEADER_PROPERTIES = encodeProperties({ [MessageProperty.WaitStoreMsgOk]: 'true' });

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

/** Queue ids as header text, for the usual small ids without a conversion per send. */
const QUEUE_ID_TEXTS: readonly string[] = Array.from({ length: 256 }, (_, id) => String(id));

function queueIdText(queueId: number): string {
  return QUEUE_ID_TEXTS[queueId] ?? String(queueId);
}

/** Sends messages to topics through the brokers the NameServer names. */
export class Producer {
  readonly group: string;
  protected readonly instance: ClientInstance;
  private readonly sendTimeoutMs: number;
  private readonly retryTimes: number;
  private readonly compressOverBytes: number | undefined;
  private readonly defaultTopicQueueNums: number;
  private readonly defaultTopicQueueNumsText: string;
  private readonly maxMessageBytes: number;
  /** Topics that exist only through the TBW102 template until the broker creates them. */
  private readonly autoCreateTopics = new Set<string>();
  /** When each auto-created topic's route was last dropped, so the NameServer is not asked on every send. */
  private readonly routeDroppedAtMs = new Map<string, number>();
  /** The TBW102 route capped at defaultTopicQueueNums, by the template route it was made from. */
  private readonly templateRoutes = new WeakMap<TopicRouteData, TopicRouteData>();
  private roundRobin = Math.floor(Math.random() * 1024);
  private running = false;
  /** Addresses to avoid; undefined when sendLatencyFaultEnable is off. */
  private readonly faults: LatencyFaultTolerance | undefined;

  constructor(options: ProducerOptions) {
    this.group = options.group;
    this.sendTimeoutMs = options.sendTimeoutMs ?? 3000;
    this.instance = new ClientInstance({ ...clientInstanceOptionsOf(options), requestTimeoutMs: this.sendTimeoutMs });
    this.retryTimes = options.retryTimesWhenSendFailed ?? 2;
    this.compressOverBytes = options.compressOverBytes;
    this.defaultTopicQueueNums = options.defaultTopicQueueNums ?? 4;
    this.defaultTopicQueueNumsText = String(this.defaultTopicQueueNums);
    this.maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
    if (options.sendLatencyFaultEnable ?? true) {
      const faultOptions: LatencyFaultOptions = {};
      if (options.faultIsolationMs !== undefined) faultOptions.isolationMs = options.faultIsolationMs;
      if (options.latencyMaxMs !== undefined) faultOptions.latencyMaxMs = options.latencyMaxMs;
      if (options.notAvailableDurationMs !== undefined) {
        faultOptions.notAvailableDurationMs = options.notAvailableDurationMs;
      }
      this.faults = new LatencyFaultTolerance(faultOptions);
    }
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
  send(message: Message, options: SendOptions = {}): Promise<SendResult> {
    // Not an async function: returning sendWithRetry's promise from one would add promise hops to
    // every send. Failures before the request leaves still reject rather than throw.
    let prepared: PreparedSend;
    try {
      this.checkRunning();
      prepared = this.prepare([applyDelay(message, options)], false);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
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
    try {
      await this.instance.transport.invokeOneway(address, markOneway(this.buildRequest(prepared, queue)));
    } catch (err) {
      if (isUnreachable(err)) {
        this.faults?.update(address, 0, true);
        void this.refreshRouteAfterFailure(prepared.topic);
      }
      throw err;
    }
  }

  /** The broker addresses the round robin avoids now (for monitoring and tests). */
  avoidedBrokerAddresses(): string[] {
    return this.faults?.unavailable() ?? [];
  }

  /** Sends messages of one topic as one SEND_BATCH_MESSAGE; they land in one queue, in order. */
  sendBatch(messages: readonly Message[], options: SendOptions = {}): Promise<SendResult> {
    let prepared: PreparedSend;
    try {
      this.checkRunning();
      if (messages.length === 0) throw new RbError(ErrorCode.MessageIllegal, 'a batch needs at least one message');
      const topic = messages[0]?.topic;
      if (messages.some((message) => message.topic !== topic)) {
        throw new RbError(ErrorCode.MessageIllegal, 'every message of a batch must have the same topic');
      }
      prepared = this.prepare(messages, true);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
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

  /** Validated topic names, so the pattern is not run on every send (bounded: cleared when full). */
  private readonly validTopics = new Set<string>();

  private validateTopic(topic: string): void {
    if (this.validTopics.has(topic)) return;
    validateTopicName(topic);
    if (this.validTopics.size >= 1024) this.validTopics.clear();
    this.validTopics.add(topic);
  }

  private checkBody(body: Buffer): void {
    if (body.length === 0) throw new RbError(ErrorCode.MessageIllegal, 'message body is empty');
    if (body.length > this.maxMessageBytes) {
      throw new RbError(ErrorCode.MessageTooLarge, `body of ${body.length} bytes exceeds ${this.maxMessageBytes}`);
    }
  }

  private prepare(messages: readonly Message[], batch: boolean): PreparedSend {
    const first = messages[0] as Message;
    this.validateTopic(first.topic);
    if (batch) return this.prepareBatch(first.topic, messages);
    this.checkBody(first.body);
    const { text, uniqueId } = encodeSendProperties(first);
    let body = first.body;
    let sysFlag = 0;
    // A half message of a transaction (DefaultMQProducerImpl.sendKernelImpl).
    if (first.properties?.[MessageProperty.TransactionPrepared] === 'true') {
      sysFlag |= MessageSysFlag.TransactionPreparedType;
    }
    if (this.compressOverBytes !== undefined && body.length > this.compressOverBytes) {
      body = deflateSync(body);
      sysFlag |= MessageSysFlag.Compressed;
    }
    return {
      topic: first.topic,
      body,
      properties: text,
      sysFlag: String(sysFlag),
      flag: String(first.flag ?? 0),
      batch,
      msgId: uniqueId,
    };
  }

  private prepareBatch(topic: string, messages: readonly Message[]): PreparedSend {
    const entries = new Array<{ body: Buffer; flag: number; properties: string }>(messages.length);
    let msgId = '';
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i] as Message;
      this.checkBody(message.body);
      const { text, uniqueId } = encodeSendProperties(message);
      entries[i] = { body: message.body, flag: message.flag ?? 0, properties: text };
      msgId = i === 0 ? uniqueId : msgId + ',' + uniqueId;
    }
    const body = encodeBatch(entries);
    if (body.length > this.maxMessageBytes) {
      throw new RbError(ErrorCode.MessageTooLarge, `batch of ${body.length} bytes exceeds ${this.maxMessageBytes}`);
    }
    return { topic, body, properties: BATCH_HEADER_PROPERTIES, sysFlag: '0', flag: '0', batch: true, msgId };
  }

  private buildRequest(prepared: PreparedSend, queue: MessageQueue, bornMs = Date.now()): RemotingCommand {
    const fields: Record<string, string> = {
      a: this.group,
      b: prepared.topic,
      c: AUTO_CREATE_TOPIC_KEY_TOPIC,
      d: this.defaultTopicQueueNumsText,
      e: queueIdText(queue.queueId),
      f: prepared.sysFlag,
      g: String(bornMs),
      h: prepared.flag,
      i: prepared.properties,
      j: '0',
      k: 'false',
      m: prepared.batch ? 'true' : 'false',
      n: queue.brokerName,
    };
    const code = prepared.batch ? RequestCode.SendBatchMessage : RequestCode.SendMessageV2;
    const request = createRequest(code, fields, prepared.body);
    // The binary (ROCKETMQ) header, as RocketMQ clients may send: cheaper than JSON to write here
    // and to read at the broker (no escaping of the properties' \u0001/\u0002 separators, no
    // JSON.parse), and the broker answers in the same type, which is cheaper for us to read too.
    request.serializeType = SerializeType.RocketMq;
    return request;
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
    // The template's queues, capped at defaultTopicQueueNums per broker (TopicRouteData from default
    // topic); one derived route per template route, so its write queues are computed once, not per send.
    let derived = this.templateRoutes.get(route);
    if (derived === undefined) {
      derived = {
        ...route,
        queueDatas: route.queueDatas.map((data) => ({
          ...data,
          readQueueNums: Math.min(data.readQueueNums, this.defaultTopicQueueNums),
          writeQueueNums: Math.min(data.writeQueueNums, this.defaultTopicQueueNums),
        })),
      };
      this.templateRoutes.set(route, derived);
    }
    return derived;
  }

  /**
   * The topic's own cached route when it has write queues (what publishRoute would answer without
   * asking anyone), else undefined: lets a send pick its queue without awaiting anything.
   */
  private cachedPublishRoute(topic: string): TopicRouteData | undefined {
    const route = this.instance.cachedRoute(topic);
    if (route === undefined || cachedWriteQueuesOf(topic, route).length === 0) return undefined;
    if (this.autoCreateTopics.size > 0) {
      this.autoCreateTopics.delete(topic);
      this.routeDroppedAtMs.delete(topic);
    }
    return route;
  }

  private async pickQueue(
    topic: string,
    message: Message,
    options: SendOptions,
    avoidBroker: string | undefined,
    refresh = false,
  ): Promise<{ queue: MessageQueue; address: string; route: TopicRouteData }> {
    return this.pickQueueFrom(await this.publishRoute(topic, refresh), topic, message, options, avoidBroker);
  }

  private pickQueueFrom(
    route: TopicRouteData,
    topic: string,
    message: Message,
    options: SendOptions,
    avoidBroker: string | undefined,
  ): { queue: MessageQueue; address: string; route: TopicRouteData } {
    // A route caught mid-failover (a broker without master, or a master that does not answer) is
    // fetched again, once a second, until it is whole: the new master is used as soon as it is
    // registered, not at the next periodic refresh. Not awaited: this send uses the route it has.
    if (this.routeDegraded(route)) void this.refreshRouteAfterFailure(topic);
    let queue: MessageQueue | undefined;
    if (options.queue !== undefined) {
      queue = options.queue;
    } else {
      const queues = cachedWriteQueuesOf(topic, route);
      if (options.selector !== undefined) {
        queue = options.selector(queues, message);
      } else {
        queue = this.selectQueue(queues, route, avoidBroker);
      }
    }
    if (queue === undefined) throw new RbError(ErrorCode.NoRoute, `topic ${topic} has no write queue`);
    const address = masterAddressOf(route, queue.brokerName) ?? this.instance.brokerAddress(queue.brokerName);
    if (address === undefined) throw new RbError(ErrorCode.NoRoute, `broker ${queue.brokerName} has no master`);
    return { queue, address, route };
  }

  /**
   * Round robin over the write queues (MQFaultStrategy.selectOneMessageQueue): the next queue whose
   * broker address is not avoided, on another broker than the failed attempt's if possible; when
   * every address is avoided, the one usable again soonest (never a refusal for that reason).
   */
  private selectQueue(
    queues: readonly MessageQueue[],
    route: TopicRouteData,
    avoidBroker: string | undefined,
  ): MessageQueue | undefined {
    const start = this.roundRobin++ & 0x7fffffff;
    // Nothing avoided (the usual case): no per-queue address lookups on the send path.
    const faults = this.faults === undefined || this.faults.empty ? undefined : this.faults;
    let sameBroker: MessageQueue | undefined;
    let leastAvoided: MessageQueue | undefined;
    let leastAvoidedScore = Infinity;
    for (let i = 0; i < queues.length; i++) {
      const candidate = queues[(start + i) % queues.length];
      if (candidate === undefined) continue;
      const address = faults === undefined ? undefined : masterAddressOf(route, candidate.brokerName);
      const availableAt = address === undefined ? 0 : (faults?.availableAt(address) ?? 0);
      if (availableAt === 0) {
        if (candidate.brokerName !== avoidBroker) return candidate;
        sameBroker ??= candidate;
        continue;
      }
      // Every broker avoided: the soonest usable again, preferring another broker than the last one.
      const score = availableAt + (candidate.brokerName === avoidBroker ? Number.MAX_SAFE_INTEGER / 2 : 0);
      if (score < leastAvoidedScore) {
        leastAvoided = candidate;
        leastAvoidedScore = score;
      }
    }
    return sameBroker ?? leastAvoided ?? queues[start % queues.length];
  }

  /** Whether a writable broker of the route has no master or a master the fault table avoids. */
  private routeDegraded(route: TopicRouteData): boolean {
    if (hasMasterlessBroker(route)) return true;
    const faults = this.faults;
    if (faults === undefined || faults.empty) return false;
    return route.brokerDatas.some((broker) => {
      const master = broker.brokerAddrs['0'];
      return master !== undefined && !faults.isAvailable(master);
    });
  }

  /** Fetches the route again after a broker did not answer (rate-limited by the client instance). */
  private async refreshRouteAfterFailure(topic: string): Promise<void> {
    await this.instance.refreshRouteAfterFailure(topic);
    if (this.autoCreateTopics.has(topic)) await this.instance.refreshRouteAfterFailure(AUTO_CREATE_TOPIC_KEY_TOPIC);
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
      let address: string | undefined;
      let startedMs = 0;
      try {
        // With the route cached (the usual case) the queue is picked without an await.
        const cached = refresh ? undefined : this.cachedPublishRoute(prepared.topic);
        const picked =
          cached !== undefined
            ? this.pickQueueFrom(cached, prepared.topic, message, options, lastBroker)
            : await this.pickQueue(prepared.topic, message, options, lastBroker, refresh);
        queue = picked.queue;
        address = picked.address;
        startedMs = Date.now();
        const response = await this.instance.invoke(
          address,
          this.buildRequest(prepared, queue, startedMs),
          this.sendTimeoutMs,
        );
        // A refusal counts by its latency, like an answer: the broker is there (RocketMQ does the same).
        this.faults?.update(address, Date.now() - startedMs, false);
        return this.toSendResult(prepared, queue, response);
      } catch (err) {
        lastError = err;
        lastBroker = queue?.brokerName;
        if (address !== undefined && isUnreachable(err)) {
          this.faults?.update(address, Date.now() - startedMs, true);
          // The broker may be gone for good (failover): look for its successor before the next try.
          if (attempt + 1 < attempts) await this.refreshRouteAfterFailure(prepared.topic);
          else void this.refreshRouteAfterFailure(prepared.topic);
        }
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
      msgId: prepared.msgId,
      offsetMsgId: response.extFields['msgId'] ?? '',
      messageQueue: { topic: prepared.topic, brokerName: queue.brokerName, queueId },
      queueOffset: Number(response.extFields['queueOffset'] ?? -1),
    };
    const transactionId = response.extFields['transactionId'];
    if (transactionId !== undefined && transactionId.length > 0) result.transactionId = transactionId;
    return result;
  }
}
