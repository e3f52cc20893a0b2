/**
 * The pull consumer (RocketMQ DefaultMQPullConsumer): the caller picks queues and offsets and pulls
 * explicitly; offsets are stored in the broker only when the caller says so. Filters by tag on the
 * client as well, since the broker compares only tag hash codes.
 */
import { ErrorCode, RbError } from '../common/errors.js';
import {
  maxOffsetOf,
  minOffsetOf,
  pullMessage,
  type PullResult,
  queryConsumerOffset,
  searchOffset,
  updateConsumerOffset,
} from './broker-api.js';
import { ClientInstance, clientInstanceOptionsOf, type ConsumerData, type ConsumerHandle } from './client-instance.js';
import { type MessageQueue, readQueuesOf } from './route.js';
import { createSubscription, matchesSubscription, subscriptionData } from './subscription.js';
import type { Transport } from './transport.js';

export interface PullConsumerOptions {
  group: string;
  nameServers: readonly string[];
  transport?: Transport;
  instanceName?: string;
  requestTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  routeRefreshIntervalMs?: number;
}

export interface PullOptions {
  /** Long polling: how long the broker may hold the pull waiting for a message (0 = answer at once). */
  suspendMs?: number;
}

/** Pulls messages from queues the caller chooses. */
export class PullConsumer implements ConsumerHandle {
  readonly group: string;
  private readonly instance: ClientInstance;
  private readonly topics = new Set<string>();
  private running = false;

  constructor(options: PullConsumerOptions) {
    this.group = options.group;
    this.instance = new ClientInstance(clientInstanceOptionsOf(options));
  }

  get clientId(): string {
    return this.instance.clientId;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.instance.addConsumer(this);
    this.instance.start();
    this.running = true;
  }

  async shutdown(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.instance.shutdown();
    this.instance.removeConsumer(this.group);
  }

  /** The readable queues of a topic (fresh from the NameServer). */
  async fetchQueues(topic: string): Promise<MessageQueue[]> {
    this.checkRunning();
    const route = await this.instance.routeOf(topic, true);
    if (route === undefined) throw new RbError(ErrorCode.TopicNotExist, `topic ${topic} does not exist`);
    this.topics.add(topic);
    return readQueuesOf(topic, route);
  }

  /** Pulls up to `maxNums` messages from `queueOffset`; messages not matching `tagExpression` are left out. */
  async pull(
    queue: MessageQueue,
    tagExpression: string,
    queueOffset: number,
    maxNums: number,
    options: PullOptions = {},
  ): Promise<PullResult> {
    this.checkRunning();
    const subscription = createSubscription(queue.topic, tagExpression);
    const result = await pullMessage(this.instance, {
      group: this.group,
      queue,
      queueOffset,
      maxNums,
      suspendMs: options.suspendMs ?? 0,
      subscription: subscription.expression,
      subVersion: subscription.subVersion,
    });
    if (result.status === 'FOUND') {
      result.messages = result.messages.filter((message) => matchesSubscription(subscription, message));
    }
    return result;
  }

  /** Stores the group's offset for the queue in the broker. */
  async updateOffset(queue: MessageQueue, queueOffset: number): Promise<void> {
    this.checkRunning();
    await updateConsumerOffset(this.instance, this.group, queue, queueOffset);
  }

  /** The group's stored offset for the queue, or -1 when it has none. */
  async fetchOffset(queue: MessageQueue): Promise<number> {
    this.checkRunning();
    return queryConsumerOffset(this.instance, this.group, queue);
  }

  minOffset(queue: MessageQueue): Promise<number> {
    return minOffsetOf(this.instance, queue);
  }

  maxOffset(queue: MessageQueue): Promise<number> {
    return maxOffsetOf(this.instance, queue);
  }

  /** The first queue offset stored at or after `timestampMs`. */
  searchOffset(queue: MessageQueue, timestampMs: number): Promise<number> {
    return searchOffset(this.instance, queue, timestampMs);
  }

  heartbeatData(): ConsumerData {
    return {
      groupName: this.group,
      consumeType: 'CONSUME_ACTIVELY',
      messageModel: 'CLUSTERING',
      consumeFromWhere: 'CONSUME_FROM_LAST_OFFSET',
      subscriptionDataSet: [...this.topics].map((topic) => subscriptionData(createSubscription(topic, '*'))),
      unitMode: false,
    };
  }

  onConsumerIdsChanged(): void {}

  runningInfo(): Record<string, unknown> {
    return { properties: { consumeType: 'CONSUME_ACTIVELY' }, subscriptionSet: [], mqTable: {}, statusTable: {} };
  }

  private checkRunning(): void {
    if (!this.running) throw new RbError(ErrorCode.ClientState, 'pull consumer is not started');
  }
}
