/**
 * The simple consumer (RocketMQ 5 SimpleConsumer, per-message acknowledgement): `receive` leases up
 * to N messages of the subscribed topics to this member through POP_MESSAGE, each invisible to the
 * rest of the group until its lease ends; `ack` removes one for good, `nack` and
 * `changeInvisibleTime` move its lease end. Leases, acks and redelivery live in the broker; this
 * class only keeps the subscriptions and picks brokers in turn.
 */
import { ErrorCode, RbError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { MessageProperty } from '../common/properties.js';
import { RETRY_GROUP_TOPIC_PREFIX, validateTopicName } from '../common/topic.js';
import { ClientInstance, clientInstanceOptionsOf, type ConsumerData, type ConsumerHandle } from './client-instance.js';
import type { MessageExt } from './message-ext.js';
import { ackMessage, batchAckMessage, changeInvisibleTime, popMessage, type PoppedMessage } from './pop-api.js';
import { Perm, type TopicRouteData } from './route.js';
import { createSubscription, type SelectorInput, type Subscription, subscriptionData } from './subscription.js';
import type { Transport } from './transport.js';

const log = createLogger('simple-consumer');

/** A received message: what was stored, plus the lease that `ack`/`nack` refer to. */
export interface ReceivedMessage extends MessageExt {
  /** The current receipt handle (RocketMQ extraInfo); replaced by changeInvisibleTime. */
  receiptHandle: string;
  /** The topic the lease belongs to: the subscribed topic, or the group's pop retry topic. */
  leaseTopic: string;
  /** When the lease ends, in this process's clock (ms since the epoch). */
  invisibleUntilMs: number;
}

export interface SimpleConsumerOptions {
  group: string;
  nameServers: readonly string[];
  transport?: Transport;
  /** Default lease of a received message (RocketMQ 5 default 30 s). */
  invisibleTimeMs?: number;
  /** Long polling: how long `receive` may wait for a message (default 15 s). */
  awaitDurationMs?: number;
  /** Where a group without a consume position starts: LAST_OFFSET (RocketMQ default) or FIRST_OFFSET. */
  consumeFromWhere?: 'LAST_OFFSET' | 'FIRST_OFFSET';
  instanceName?: string;
  requestTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  routeRefreshIntervalMs?: number;
}

/** RocketMQ caps one pop at 32 messages. */
const MAX_MESSAGES_PER_RECEIVE = 32;

/** Receives messages one lease at a time and acknowledges them one by one. */
export class SimpleConsumer implements ConsumerHandle {
  readonly group: string;
  private readonly instance: ClientInstance;
  private readonly invisibleTimeMs: number;
  private readonly awaitDurationMs: number;
  private readonly initMode: 0 | 1;
  private readonly subscriptions = new Map<string, Subscription>();
  private topicTurn = 0;
  private brokerTurn = 0;
  private running = false;

  constructor(options: SimpleConsumerOptions) {
    this.group = options.group;
    this.invisibleTimeMs = options.invisibleTimeMs ?? 30_000;
    this.awaitDurationMs = options.awaitDurationMs ?? 15_000;
    this.initMode = options.consumeFromWhere === 'FIRST_OFFSET' ? 0 : 1;
    checkDuration('invisibleTimeMs', this.invisibleTimeMs);
    checkDuration('awaitDurationMs', this.awaitDurationMs);
    this.instance = new ClientInstance(clientInstanceOptionsOf(options));
  }

  get clientId(): string {
    return this.instance.clientId;
  }

  /** Subscribes a topic with a tag expression; invalid expressions throw RB_ERR_SUBSCRIPTION_INVALID. */
  subscribe(topic: string, selector: SelectorInput = '*'): void {
    validateTopicName(topic);
    this.subscriptions.set(topic, createSubscription(topic, selector));
    if (this.running) void this.instance.sendHeartbeatToAllBrokers();
  }

  unsubscribe(topic: string): void {
    this.subscriptions.delete(topic);
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.instance.addConsumer(this);
    this.instance.start();
    this.running = true;
    for (const topic of this.subscriptions.keys()) {
      try {
        await this.instance.routeOf(topic);
      } catch (err) {
        log.warn({ err, topic }, 'route lookup failed at start; receive will try again');
      }
    }
    await this.instance.sendHeartbeatToAllBrokers();
  }

  async shutdown(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.instance.shutdown();
    this.instance.removeConsumer(this.group);
  }

  /**
   * Leases up to `maxMessages` (1..32) messages for `invisibleTimeMs` (the consumer's default when
   * omitted). Asks each broker of a subscribed topic at once, then long-polls one for up to
   * awaitDurationMs; resolves with an empty list when nothing arrived.
   */
  async receive(maxMessages = 16, invisibleTimeMs = this.invisibleTimeMs): Promise<ReceivedMessage[]> {
    this.checkRunning();
    if (!Number.isInteger(maxMessages) || maxMessages < 1 || maxMessages > MAX_MESSAGES_PER_RECEIVE) {
      throw new RbError(
        ErrorCode.ClientState,
        `maxMessages must be 1..${MAX_MESSAGES_PER_RECEIVE}, not ${maxMessages}`,
      );
    }
    checkDuration('invisibleTimeMs', invisibleTimeMs);
    const subscriptions = [...this.subscriptions.values()];
    if (subscriptions.length === 0) throw new RbError(ErrorCode.ClientState, 'subscribe to a topic before receive');
    const targets: { subscription: Subscription; brokerName: string; address: string }[] = [];
    const firstTopic = this.topicTurn++;
    for (let i = 0; i < subscriptions.length; i++) {
      const subscription = subscriptions[(firstTopic + i) % subscriptions.length] as Subscription;
      const route = await this.instance.routeOf(subscription.topic);
      if (route === undefined) continue;
      for (const broker of readableBrokers(route)) targets.push({ subscription, ...broker });
    }
    if (targets.length === 0) {
      throw new RbError(ErrorCode.NoRoute, `no readable broker for ${subscriptions.map((s) => s.topic).join(', ')}`);
    }
    const start = this.brokerTurn++;
    // A quick look everywhere first, so one idle broker cannot hold up messages waiting on another.
    for (let round = 0; round < 2; round++) {
      const pollTimeMs = round === 0 && targets.length > 1 ? 0 : this.awaitDurationMs;
      const tries = round === 0 ? targets.length : 1;
      for (let i = 0; i < tries; i++) {
        const target = targets[(start + i) % targets.length] as (typeof targets)[number];
        const popped = await popMessage(this.instance, target.address, target.brokerName, {
          group: this.group,
          topic: target.subscription.topic,
          queueId: -1,
          maxNums: maxMessages,
          invisibleTimeMs,
          pollTimeMs,
          initMode: this.initMode,
          expression: target.subscription.expression,
        });
        if (popped.length > 0) return popped.map((each) => this.toReceived(each, invisibleTimeMs));
      }
      if (targets.length === 1) break;
    }
    return [];
  }

  /** Acknowledges a received message: the group never receives it again. */
  async ack(message: ReceivedMessage): Promise<void> {
    this.checkRunning();
    const address = await this.addressOf(message);
    await ackMessage(this.instance, address, this.group, message.leaseTopic, message.receiptHandle);
  }

  /**
   * Acknowledges several received messages with one BATCH_ACK_MESSAGE per broker. Leases the broker
   * no longer holds (already acked, run out, handle replaced) are skipped rather than failing the
   * batch; resolves with how many leases ended.
   */
  async ackMany(messages: readonly ReceivedMessage[]): Promise<number> {
    this.checkRunning();
    const byBroker = new Map<string, ReceivedMessage[]>();
    for (const message of messages) {
      const list = byBroker.get(message.brokerName);
      if (list === undefined) byBroker.set(message.brokerName, [message]);
      else list.push(message);
    }
    const counts = await Promise.all(
      [...byBroker.entries()].map(async ([brokerName, list]) => {
        const address = await this.addressOf(list[0] as ReceivedMessage);
        const items = list.map((message) => ({
          // The body names the subscribed topic and marks retry-topic leases (BatchAck.retry).
          topic: message.leaseTopic.startsWith(RETRY_GROUP_TOPIC_PREFIX) ? message.topic : message.leaseTopic,
          receiptHandle: message.receiptHandle,
        }));
        return batchAckMessage(this.instance, address, brokerName, this.group, items);
      }),
    );
    return counts.reduce((sum, count) => sum + count, 0);
  }

  /** Gives a message back: visible to the group again after `delayMs` (0 = at once). */
  async nack(message: ReceivedMessage, delayMs = 0): Promise<void> {
    await this.changeInvisibleTime(message, delayMs);
  }

  /**
   * Moves the end of a message's lease to `invisibleTimeMs` from now. Updates `message.receiptHandle`
   * (the old handle is void) and returns the new one.
   */
  async changeInvisibleTime(message: ReceivedMessage, invisibleTimeMs: number): Promise<string> {
    this.checkRunning();
    checkDuration('invisibleTimeMs', invisibleTimeMs);
    const address = await this.addressOf(message);
    const handle = await changeInvisibleTime(
      this.instance,
      address,
      this.group,
      message.leaseTopic,
      message.receiptHandle,
      invisibleTimeMs,
    );
    message.receiptHandle = handle;
    message.invisibleUntilMs = Date.now() + invisibleTimeMs;
    return handle;
  }

  // ConsumerHandle

  heartbeatData(): ConsumerData {
    return {
      groupName: this.group,
      consumeType: 'CONSUME_POP',
      messageModel: 'CLUSTERING',
      consumeFromWhere: this.initMode === 0 ? 'CONSUME_FROM_FIRST_OFFSET' : 'CONSUME_FROM_LAST_OFFSET',
      subscriptionDataSet: [...this.subscriptions.values()].map(subscriptionData),
      unitMode: false,
    };
  }

  onConsumerIdsChanged(): void {
    // Pop consumers share queues; membership changes need no rebalance here.
  }

  runningInfo(): Record<string, unknown> {
    return {
      properties: { consumeType: 'CONSUME_POP', messageModel: 'CLUSTERING', PROP_CLIENT_VERSION: 'rocketbridge' },
      subscriptionSet: [...this.subscriptions.values()].map(subscriptionData),
      mqTable: {},
      statusTable: {},
    };
  }

  private toReceived(popped: PoppedMessage, invisibleTimeMs: number): ReceivedMessage {
    const { message, leaseTopic, receiptHandle } = popped;
    const original = message.allProperties[MessageProperty.RetryTopic];
    // A redelivered message comes from the pop retry topic; the user sees the topic it was sent to.
    if (leaseTopic.startsWith(RETRY_GROUP_TOPIC_PREFIX) && original !== undefined) message.topic = original;
    // The decoded message is ours alone: extend it rather than copy it (this runs per message).
    return Object.assign(message, { receiptHandle, leaseTopic, invisibleUntilMs: Date.now() + invisibleTimeMs });
  }

  private async addressOf(message: ReceivedMessage): Promise<string> {
    return this.instance.brokerAddressOf({ topic: message.topic, brokerName: message.brokerName, queueId: 0 });
  }

  private checkRunning(): void {
    if (!this.running) throw new RbError(ErrorCode.ClientState, 'simple consumer is not started');
  }
}

function checkDuration(name: string, ms: number): void {
  if (!Number.isInteger(ms) || ms < 0)
    throw new RbError(ErrorCode.ClientState, `${name} must be a whole number of ms >= 0`);
}

/** The masters of the brokers that have readable queues of the topic. */
function readableBrokers(route: TopicRouteData): { brokerName: string; address: string }[] {
  const brokers: { brokerName: string; address: string }[] = [];
  for (const data of route.queueDatas) {
    if ((data.perm & Perm.Read) === 0 || data.readQueueNums === 0) continue;
    const address = route.brokerDatas.find((broker) => broker.brokerName === data.brokerName)?.brokerAddrs['0'];
    if (address !== undefined) brokers.push({ brokerName: data.brokerName, address });
  }
  return brokers.sort((a, b) => (a.brokerName < b.brokerName ? -1 : a.brokerName > b.brokerName ? 1 : 0));
}
