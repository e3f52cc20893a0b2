/**
 * The push consumer (RocketMQ DefaultMQPushConsumer). It owns: rebalancing queues among the group's
 * members, one long-polling pull loop per owned queue, handing messages to the user's handler with
 * bounded concurrency, sending failed messages back for retry, and committing offsets (smallest
 * unfinished per queue) to the broker, or to a local file when broadcasting.
 *
 * Orderly mode (MessageListenerOrderly): each queue is locked at its broker before it is consumed and
 * the lock is renewed periodically; one handler call per queue is in flight, in queue order; a
 * message the handler fails is retried locally after a pause and blocks its queue meanwhile.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, RbError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { MessageProperty } from '../common/properties.js';
import { RETRY_GROUP_TOPIC_PREFIX, retryTopicOf, validateTopicName } from '../common/topic.js';
import { allocateAveragely } from './allocate.js';
import {
  consumerIdsOf,
  maxOffsetOf,
  minOffsetOf,
  pullMessage,
  type PullResult,
  searchOffset,
  sendMessageBack,
} from './broker-api.js';
import { ClientInstance, clientInstanceOptionsOf, type ConsumerData, type ConsumerHandle } from './client-instance.js';
import { lockBatchMq, unlockBatchMq } from './lock-api.js';
import type { MessageExt } from './message-ext.js';
import { LocalOffsetStore, type OffsetStore, RemoteOffsetStore } from './offset-store.js';
import { ProcessQueue } from './process-queue.js';
import { adminAddressOf, type MessageQueue, queueKey, readQueuesOf } from './route.js';
import {
  createSubscription,
  matchesSubscription,
  type SelectorInput,
  type Subscription,
  subscriptionData,
} from './subscription.js';
import { Semaphore, sleep } from './timing.js';
import type { Transport } from './transport.js';

const log = createLogger('push-consumer');

/**
 * What a handler answers (the Go client's ConsumeSuccess / ConsumeRetryLater). Orderly consumers
 * treat RECONSUME_LATER and SUSPEND_CURRENT_QUEUE_A_MOMENT alike: pause the queue, retry the message.
 */
export type ConsumeResult = 'CONSUME_SUCCESS' | 'RECONSUME_LATER' | 'SUSPEND_CURRENT_QUEUE_A_MOMENT';
export type MessageHandler = (messages: MessageExt[]) => Promise<ConsumeResult> | ConsumeResult;
export type MessageModel = 'CLUSTERING' | 'BROADCASTING';
export type ConsumeFromWhere = 'LAST_OFFSET' | 'FIRST_OFFSET' | 'TIMESTAMP';

export interface PushConsumerOptions {
  group: string;
  nameServers: readonly string[];
  transport?: Transport;
  messageModel?: MessageModel;
  /** Where a queue starts when the group has no committed offset for it (default LAST_OFFSET). */
  consumeFromWhere?: ConsumeFromWhere;
  /** For TIMESTAMP: ms since the epoch (default: half an hour ago, as RocketMQ). */
  consumeTimestamp?: number;
  /** Messages per pull (RocketMQ pullBatchSize 32). */
  pullBatchSize?: number;
  /** Messages per handler call (RocketMQ consumeMessageBatchMaxSize 1). */
  consumeBatchSize?: number;
  /** Handler calls in flight at once across all queues (RocketMQ consumeThreadMax 20). */
  consumeConcurrency?: number;
  /** Pulling pauses for a queue holding this many unfinished messages (RocketMQ 1000). */
  maxCachedMessagesPerQueue?: number;
  rebalanceIntervalMs?: number;
  offsetPersistIntervalMs?: number;
  /** How long the broker holds a pull that finds nothing (RocketMQ 15 s). */
  suspendTimeoutMs?: number;
  /** Wait before pulling again after a failed pull (RocketMQ 3 s). */
  pullRetryDelayMs?: number;
  /** Wait before re-running a handler locally when sending a message back failed (RocketMQ 5 s). */
  localRetryDelayMs?: number;
  /**
   * Sent-back messages go to the DLQ after this many (RocketMQ 16). Orderly: local retries of one
   * message before it goes to the DLQ; unlimited when omitted (RocketMQ Integer.MAX_VALUE).
   */
  maxReconsumeTimes?: number;
  /** Orderly consumption: lock each queue, one handler call per queue at a time, in order. */
  orderly?: boolean;
  /** Orderly: how often the queue locks are renewed (RocketMQ 20 s). */
  lockIntervalMs?: number;
  /** Orderly: a lock not renewed for this long is considered lost (RocketMQ 30 s). */
  lockMaxLiveTimeMs?: number;
  /** Orderly: pause before retrying a failed message (RocketMQ suspendCurrentQueueTimeMillis 1 s). */
  suspendCurrentQueueTimeMs?: number;
  /** Broadcasting: offsets go to `<offsetStoreDir>/<group>/offsets.json` (default ~/.rocketbridge_offsets/<instance>). */
  offsetStoreDir?: string;
  /** Shutdown waits this long for handlers in flight before committing offsets. */
  shutdownTimeoutMs?: number;
  instanceName?: string;
  requestTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  routeRefreshIntervalMs?: number;
}

const CONSUME_FROM: Record<ConsumeFromWhere, string> = {
  LAST_OFFSET: 'CONSUME_FROM_LAST_OFFSET',
  FIRST_OFFSET: 'CONSUME_FROM_FIRST_OFFSET',
  TIMESTAMP: 'CONSUME_FROM_TIMESTAMP',
};

/** Receives messages of subscribed topics as they arrive. */
export class PushConsumer implements ConsumerHandle {
  readonly group: string;
  readonly messageModel: MessageModel;
  private readonly instance: ClientInstance;
  private readonly offsetStore: OffsetStore;
  private readonly options: Required<
    Omit<
      PushConsumerOptions,
      'transport' | 'instanceName' | 'offsetStoreDir' | 'consumeTimestamp' | 'nameServers' | 'maxReconsumeTimes'
    >
  >;
  /** Sent-back limit; for orderly consumers undefined means unlimited local retries. */
  private readonly maxReconsumeTimes: number | undefined;
  private readonly consumeTimestamp: number;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly handlers = new Map<string, MessageHandler>();
  private readonly processQueues = new Map<string, ProcessQueue>();
  private readonly consumeSlots: Semaphore;
  private readonly inflight = new Set<Promise<void>>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private timers: NodeJS.Timeout[] = [];
  private running = false;
  private rebalancing: Promise<void> | undefined;
  private rebalanceAgain = false;
  private lastHeartbeatForErrorMs = 0;

  constructor(options: PushConsumerOptions) {
    this.group = options.group;
    this.messageModel = options.messageModel ?? 'CLUSTERING';
    this.options = {
      group: options.group,
      messageModel: this.messageModel,
      consumeFromWhere: options.consumeFromWhere ?? 'LAST_OFFSET',
      pullBatchSize: options.pullBatchSize ?? 32,
      consumeBatchSize: options.consumeBatchSize ?? 1,
      consumeConcurrency: options.consumeConcurrency ?? 20,
      maxCachedMessagesPerQueue: options.maxCachedMessagesPerQueue ?? 1000,
      rebalanceIntervalMs: options.rebalanceIntervalMs ?? 20_000,
      offsetPersistIntervalMs: options.offsetPersistIntervalMs ?? 5000,
      suspendTimeoutMs: options.suspendTimeoutMs ?? 15_000,
      pullRetryDelayMs: options.pullRetryDelayMs ?? 3000,
      localRetryDelayMs: options.localRetryDelayMs ?? 5000,
      orderly: options.orderly ?? false,
      lockIntervalMs: options.lockIntervalMs ?? 20_000,
      lockMaxLiveTimeMs: options.lockMaxLiveTimeMs ?? 30_000,
      suspendCurrentQueueTimeMs: options.suspendCurrentQueueTimeMs ?? 1000,
      shutdownTimeoutMs: options.shutdownTimeoutMs ?? 5000,
      requestTimeoutMs: options.requestTimeoutMs ?? 3000,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 30_000,
      routeRefreshIntervalMs: options.routeRefreshIntervalMs ?? 30_000,
    };
    this.maxReconsumeTimes = options.maxReconsumeTimes ?? (options.orderly === true ? undefined : 16);
    if (this.options.orderly && this.messageModel === 'BROADCASTING') {
      throw new RbError(ErrorCode.ConfigInvalid, 'orderly consumption needs CLUSTERING');
    }
    this.consumeTimestamp = options.consumeTimestamp ?? Date.now() - 30 * 60 * 1000;
    this.instance = new ClientInstance({
      ...clientInstanceOptionsOf(options),
      requestTimeoutMs: this.options.requestTimeoutMs,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      routeRefreshIntervalMs: this.options.routeRefreshIntervalMs,
    });
    this.offsetStore =
      this.messageModel === 'BROADCASTING'
        ? new LocalOffsetStore(
            options.offsetStoreDir ?? join(homedir(), '.rocketbridge_offsets', options.instanceName ?? 'DEFAULT'),
            this.group,
          )
        : new RemoteOffsetStore(this.instance, this.group);
    this.consumeSlots = new Semaphore(this.options.consumeConcurrency);
  }

  get clientId(): string {
    return this.instance.clientId;
  }

  /**
   * Subscribes `topic` with a tag expression (`*`, `a || b`, word patterns); call before start.
   * Invalid expressions throw RB_ERR_SUBSCRIPTION_INVALID.
   */
  subscribe(topic: string, tagExpression: SelectorInput, handler: MessageHandler): void {
    validateTopicName(topic);
    if (this.running) throw new RbError(ErrorCode.ClientState, 'subscribe before start');
    this.subscriptions.set(topic, createSubscription(topic, tagExpression));
    this.handlers.set(topic, handler);
  }

  async start(): Promise<void> {
    if (this.running) return;
    if (this.handlers.size === 0) throw new RbError(ErrorCode.ClientState, 'subscribe to a topic before start');
    if (this.messageModel === 'CLUSTERING') {
      // Messages sent back for retry come through the group's retry topic.
      const retryTopic = retryTopicOf(this.group);
      this.subscriptions.set(retryTopic, createSubscription(retryTopic, '*'));
    }
    await this.offsetStore.load();
    this.instance.addConsumer(this);
    this.instance.start();
    this.running = true;
    for (const topic of this.subscriptions.keys()) {
      try {
        await this.instance.routeOf(topic);
      } catch (err) {
        log.warn({ err, topic }, 'route lookup failed at start; the rebalance will try again');
      }
    }
    await this.instance.sendHeartbeatToAllBrokers();
    await this.rebalance();
    this.timers.push(
      setInterval(() => void this.rebalance(), this.options.rebalanceIntervalMs).unref(),
      setInterval(() => void this.persistOffsets(), this.options.offsetPersistIntervalMs).unref(),
    );
    if (this.options.orderly) {
      this.timers.push(setInterval(() => void this.lockAll(), this.options.lockIntervalMs).unref());
    }
  }

  /** Stops pulling, waits briefly for handlers in flight, commits offsets and leaves the group. */
  async shutdown(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    for (const pq of this.processQueues.values()) pq.abort.abort();
    await this.rebalancing;
    // The bounded wait must not outlive the handlers: its timer would hold the process open.
    const waitDone = new AbortController();
    await Promise.race([
      Promise.allSettled([...this.inflight]),
      sleep(this.options.shutdownTimeoutMs, waitDone.signal),
    ]);
    waitDone.abort();
    await this.persistOffsets();
    for (const pq of this.processQueues.values()) pq.drop();
    if (this.options.orderly) await this.unlock([...this.processQueues.values()].map((pq) => pq.queue));
    await this.instance.shutdown();
    this.instance.removeConsumer(this.group);
    this.processQueues.clear();
  }

  /** The queues this member currently pulls. */
  assignedQueues(): MessageQueue[] {
    return [...this.processQueues.values()].map((pq) => pq.queue);
  }

  // ConsumerHandle

  heartbeatData(): ConsumerData {
    return {
      groupName: this.group,
      consumeType: 'CONSUME_PASSIVELY',
      messageModel: this.messageModel,
      consumeFromWhere: CONSUME_FROM[this.options.consumeFromWhere],
      subscriptionDataSet: [...this.subscriptions.values()].map(subscriptionData),
      unitMode: false,
    };
  }

  onConsumerIdsChanged(): void {
    if (this.running) void this.rebalance();
  }

  runningInfo(): Record<string, unknown> {
    return {
      properties: {
        consumeType: 'CONSUME_PASSIVELY',
        messageModel: this.messageModel,
        consumeFromWhere: CONSUME_FROM[this.options.consumeFromWhere],
        PROP_CLIENT_VERSION: 'rocketbridge',
      },
      subscriptionSet: [...this.subscriptions.values()].map(subscriptionData),
      mqTable: Object.fromEntries(
        [...this.processQueues.values()].map((pq) => [
          queueKey(pq.queue),
          { cachedMsgCount: pq.count, nextPullOffset: pq.nextPullOffset },
        ]),
      ),
      statusTable: {},
    };
  }

  // Rebalance

  /** Re-runs allocation; concurrent calls coalesce into one more run. */
  rebalance(): Promise<void> {
    if (this.rebalancing !== undefined) {
      this.rebalanceAgain = true;
      return this.rebalancing;
    }
    this.rebalancing = (async () => {
      try {
        do {
          this.rebalanceAgain = false;
          for (const topic of this.subscriptions.keys()) {
            if (!this.running) return;
            try {
              await this.rebalanceTopic(topic);
            } catch (err) {
              log.warn({ err, topic, group: this.group }, 'rebalance failed');
            }
          }
        } while (this.rebalanceAgain && this.running);
      } finally {
        this.rebalancing = undefined;
      }
    })();
    return this.rebalancing;
  }

  private async rebalanceTopic(topic: string): Promise<void> {
    const route = await this.instance.routeOf(topic);
    if (route === undefined) {
      log.debug({ topic }, 'topic has no route yet');
      return;
    }
    const queues = readQueuesOf(topic, route);
    let owned: MessageQueue[];
    if (this.messageModel === 'BROADCASTING') {
      owned = queues;
    } else {
      // Any broker knows the group's members; a slave does too when its master is gone.
      const brokers = route.brokerDatas
        .map((broker) => adminAddressOf(broker.brokerAddrs))
        .filter((address) => address !== undefined);
      const broker = brokers[Math.floor(Math.random() * brokers.length)];
      if (broker === undefined) return;
      const clientIds = await consumerIdsOf(this.instance, broker, this.group);
      owned = allocateAveragely(this.clientId, clientIds, queues);
    }
    await this.updateProcessQueues(topic, owned);
  }

  private async updateProcessQueues(topic: string, owned: readonly MessageQueue[]): Promise<void> {
    const ownedKeys = new Set(owned.map(queueKey));
    for (const [key, pq] of this.processQueues) {
      if (pq.queue.topic !== topic || ownedKeys.has(key)) continue;
      // Released: stop pulling, commit what is finished, and let the new owner start from there.
      pq.drop();
      this.processQueues.delete(key);
      // Orderly: the handler call in flight finishes before the lock goes, so order holds across owners.
      if (pq.consuming !== undefined) await pq.consuming;
      await this.offsetStore.persist(pq.queue);
      this.offsetStore.remove(pq.queue);
      if (this.options.orderly) await this.unlock([pq.queue]);
      log.debug({ queue: key, group: this.group }, 'queue released');
    }
    for (const queue of owned) {
      const key = queueKey(queue);
      if (this.processQueues.has(key) || !this.running) continue;
      // Orderly: a queue another member still holds is left for a later rebalance.
      if (this.options.orderly && !(await this.lockOne(queue))) continue;
      let startOffset: number;
      try {
        startOffset = await this.startOffsetOf(queue);
      } catch (err) {
        log.warn({ err, queue: key }, 'cannot compute the start offset; will retry on the next rebalance');
        continue;
      }
      if (!this.running || this.processQueues.has(key)) continue;
      this.offsetStore.update(queue, startOffset, false);
      const pq = new ProcessQueue(queue, startOffset);
      if (this.options.orderly) {
        pq.locked = true;
        pq.lastLockMs = Date.now();
      }
      this.processQueues.set(key, pq);
      log.debug({ queue: key, startOffset, group: this.group }, 'queue assigned');
      void this.pullLoop(pq);
    }
  }

  /** RebalancePushImpl.computePullFromWhere: the committed offset, else per consumeFromWhere. */
  private async startOffsetOf(queue: MessageQueue): Promise<number> {
    const stored = await this.offsetStore.readStored(queue);
    if (stored >= 0) return stored;
    const isRetry = queue.topic.startsWith(RETRY_GROUP_TOPIC_PREFIX);
    switch (this.options.consumeFromWhere) {
      case 'FIRST_OFFSET':
        return minOffsetOf(this.instance, queue);
      case 'TIMESTAMP':
        return isRetry ? maxOffsetOf(this.instance, queue) : searchOffset(this.instance, queue, this.consumeTimestamp);
      case 'LAST_OFFSET':
        // A retry queue holds only this group's messages: read it all.
        return isRetry ? minOffsetOf(this.instance, queue) : maxOffsetOf(this.instance, queue);
    }
  }

  // Pulling

  private async pullLoop(pq: ProcessQueue): Promise<void> {
    const subscription = this.subscriptions.get(pq.queue.topic);
    if (subscription === undefined) return;
    while (this.running && !pq.dropped) {
      if (this.options.orderly && !pq.lockValid(Date.now(), this.options.lockMaxLiveTimeMs)) {
        // Only the lock holder may move a queue forward; wait for the next renewal.
        await sleep(Math.min(1000, this.options.lockIntervalMs), pq.abort.signal);
        continue;
      }
      if (pq.count >= this.options.maxCachedMessagesPerQueue) {
        await pq.waitForSpace(1000);
        continue;
      }
      const startedMs = Date.now();
      let result: PullResult;
      try {
        result = await pullMessage(this.instance, {
          group: this.group,
          queue: pq.queue,
          queueOffset: pq.nextPullOffset,
          maxNums: this.options.pullBatchSize,
          commitOffset: this.messageModel === 'CLUSTERING' ? this.offsetStore.readMemory(pq.queue) : -1,
          suspendMs: this.options.suspendTimeoutMs,
          subscription: subscription.expression,
          subVersion: subscription.subVersion,
        });
      } catch (err) {
        if (!this.running || pq.dropped) break;
        log.debug({ err, queue: queueKey(pq.queue) }, 'pull failed; retrying later');
        this.heartbeatAfterError();
        await sleep(this.options.pullRetryDelayMs, pq.abort.signal);
        continue;
      }
      if (!this.running || pq.dropped) break;
      await this.onPullResult(pq, subscription, result, Date.now() - startedMs);
    }
  }

  private async onPullResult(
    pq: ProcessQueue,
    subscription: Subscription,
    result: PullResult,
    elapsedMs: number,
  ): Promise<void> {
    switch (result.status) {
      case 'FOUND': {
        pq.nextPullOffset = result.nextBeginOffset;
        const messages = result.messages.filter((message) => matchesSubscription(subscription, message));
        for (const message of messages) this.resetRetryTopic(message);
        if (messages.length === 0) {
          this.correctTagsOffset(pq);
          return;
        }
        pq.put(messages);
        if (this.options.orderly) this.kickOrderly(pq);
        else await this.dispatch(pq, messages);
        return;
      }
      case 'NO_NEW_MSG':
      case 'NO_MATCHED_MSG':
        pq.nextPullOffset = result.nextBeginOffset;
        this.correctTagsOffset(pq);
        // A broker that does not hold pulls would otherwise be asked again at once, forever.
        if (result.status === 'NO_NEW_MSG' && elapsedMs < 50) await sleep(100, pq.abort.signal);
        return;
      case 'OFFSET_ILLEGAL':
        log.warn({ queue: queueKey(pq.queue), from: pq.nextPullOffset, to: result.nextBeginOffset }, 'offset moved');
        pq.nextPullOffset = result.nextBeginOffset;
        this.offsetStore.update(pq.queue, result.nextBeginOffset, false);
        await this.offsetStore.persist(pq.queue);
        return;
    }
  }

  /** With nothing in flight, the queue's offset may follow the pull offset past filtered-out messages. */
  private correctTagsOffset(pq: ProcessQueue): void {
    if (pq.count === 0) this.offsetStore.update(pq.queue, pq.nextPullOffset, true);
  }

  /** A message sent back for retry returns with its original topic (resetRetryAndNamespace). */
  private resetRetryTopic(message: MessageExt): void {
    const original = message.allProperties[MessageProperty.RetryTopic];
    if (original !== undefined && message.topic === retryTopicOf(this.group)) message.topic = original;
  }

  private heartbeatAfterError(): void {
    const now = Date.now();
    if (now - this.lastHeartbeatForErrorMs < 1000) return;
    this.lastHeartbeatForErrorMs = now;
    void this.instance.sendHeartbeatToAllBrokers();
  }

  // Consuming

  /** Hands messages to the handler in queue order; waits for a free slot so pulling slows with consuming. */
  private async dispatch(pq: ProcessQueue, messages: MessageExt[]): Promise<void> {
    for (let i = 0; i < messages.length; i += this.options.consumeBatchSize) {
      const batch = messages.slice(i, i + this.options.consumeBatchSize);
      await this.consumeSlots.acquire();
      if (!this.running || pq.dropped) {
        this.consumeSlots.release();
        return;
      }
      this.track(this.consume(pq, batch).finally(() => this.consumeSlots.release()));
    }
  }

  private track(work: Promise<void>): void {
    this.inflight.add(work);
    void work.finally(() => this.inflight.delete(work));
  }

  private async consume(pq: ProcessQueue, messages: MessageExt[]): Promise<void> {
    const handler = this.handlers.get(messages[0]?.topic ?? '');
    let result: ConsumeResult = 'CONSUME_SUCCESS';
    if (handler !== undefined) {
      try {
        result = await handler(messages);
      } catch (err) {
        log.warn({ err, group: this.group }, 'message handler threw; the messages will be retried');
        result = 'RECONSUME_LATER';
      }
    }
    let finished = messages;
    if (result === 'RECONSUME_LATER') {
      if (this.messageModel === 'BROADCASTING') {
        log.warn({ count: messages.length }, 'broadcasting consumers do not retry; messages dropped');
      } else {
        finished = await this.sendBack(pq, messages, this.maxReconsumeTimes ?? 16);
      }
    }
    if (finished.length === 0) return;
    const commitOffset = pq.remove(finished);
    if (commitOffset >= 0 && !pq.dropped) this.offsetStore.update(pq.queue, commitOffset, true);
  }

  /** Sends messages back for retry; returns those done with, and retries the rest locally later. */
  private async sendBack(pq: ProcessQueue, messages: MessageExt[], maxReconsumeTimes: number): Promise<MessageExt[]> {
    const sent: MessageExt[] = [];
    const failed: MessageExt[] = [];
    for (const message of messages) {
      try {
        await sendMessageBack(this.instance, this.group, message, maxReconsumeTimes);
        sent.push(message);
      } catch (err) {
        log.warn({ err, msgId: message.msgId }, 'sending the message back failed; retrying locally');
        failed.push(message);
      }
    }
    if (failed.length > 0 && this.running && !pq.dropped) {
      const timer = setTimeout(() => {
        this.retryTimers.delete(timer);
        if (!this.running || pq.dropped) return;
        for (const message of failed) message.reconsumeTimes++;
        this.track(
          (async () => {
            await this.consumeSlots.acquire();
            try {
              await this.consume(pq, failed);
            } finally {
              this.consumeSlots.release();
            }
          })(),
        );
      }, this.options.localRetryDelayMs);
      this.retryTimers.add(timer);
    }
    return sent;
  }

  private async persistOffsets(): Promise<void> {
    await this.offsetStore.persistAll(this.assignedQueues());
  }

  // Orderly consumption

  /** Starts the queue's consume loop unless it is running. */
  private kickOrderly(pq: ProcessQueue): void {
    if (pq.consuming !== undefined || pq.dropped || !this.running) return;
    const loop = this.consumeOrderly(pq).finally(() => {
      pq.consuming = undefined;
    });
    pq.consuming = loop;
    this.track(loop);
  }

  /**
   * ConsumeMessageOrderlyService: while the lock is valid, hands the queue's first unfinished message
   * to the handler; success commits past it, failure pauses the queue and retries the same message.
   */
  private async consumeOrderly(pq: ProcessQueue): Promise<void> {
    while (this.running && !pq.dropped && pq.lockValid(Date.now(), this.options.lockMaxLiveTimeMs)) {
      const message = pq.first();
      if (message === undefined) return;
      const handler = this.handlers.get(message.topic);
      await this.consumeSlots.acquire();
      let result: ConsumeResult = 'CONSUME_SUCCESS';
      try {
        if (!this.running || pq.dropped) return;
        if (handler !== undefined) result = await handler([message]);
      } catch (err) {
        log.warn({ err, group: this.group, msgId: message.msgId }, 'orderly handler threw; retrying the message');
        result = 'RECONSUME_LATER';
      } finally {
        this.consumeSlots.release();
      }
      if (result !== 'CONSUME_SUCCESS') {
        message.reconsumeTimes++;
        const max = this.maxReconsumeTimes;
        if (max === undefined || message.reconsumeTimes <= max || !(await this.sendToDlq(message))) {
          await sleep(this.options.suspendCurrentQueueTimeMs, pq.abort.signal);
          continue;
        }
      }
      const commitOffset = pq.remove([message]);
      if (commitOffset >= 0 && !pq.dropped) this.offsetStore.update(pq.queue, commitOffset, true);
    }
  }

  /** An orderly message past its retries goes to the DLQ (delay level -1); false if that failed. */
  private async sendToDlq(message: MessageExt): Promise<boolean> {
    try {
      await sendMessageBack(this.instance, this.group, message, this.maxReconsumeTimes ?? 16, -1);
      return true;
    } catch (err) {
      log.warn({ err, msgId: message.msgId }, 'moving an orderly message to the DLQ failed; retrying it');
      return false;
    }
  }

  private async lockOne(queue: MessageQueue): Promise<boolean> {
    try {
      const address = await this.instance.brokerAddressOf(queue);
      const locked = await lockBatchMq(this.instance, address, this.group, [queue]);
      return locked.has(queueKey(queue));
    } catch (err) {
      log.debug({ err, queue: queueKey(queue) }, 'locking a queue failed');
      return false;
    }
  }

  /** RebalanceImpl.lockAll: renews every owned queue's lock, per broker. */
  private async lockAll(): Promise<void> {
    const byBroker = new Map<string, ProcessQueue[]>();
    for (const pq of this.processQueues.values()) {
      const list = byBroker.get(pq.queue.brokerName) ?? [];
      list.push(pq);
      byBroker.set(pq.queue.brokerName, list);
    }
    for (const pqs of byBroker.values()) {
      const first = pqs[0] as ProcessQueue;
      try {
        const address = await this.instance.brokerAddressOf(first.queue);
        const locked = await lockBatchMq(
          this.instance,
          address,
          this.group,
          pqs.map((pq) => pq.queue),
        );
        const now = Date.now();
        for (const pq of pqs) {
          pq.locked = locked.has(queueKey(pq.queue));
          if (pq.locked) {
            pq.lastLockMs = now;
            this.kickOrderly(pq);
          }
        }
      } catch (err) {
        log.debug({ err, broker: first.queue.brokerName }, 'renewing queue locks failed');
      }
    }
  }

  private async unlock(queues: readonly MessageQueue[]): Promise<void> {
    const byBroker = new Map<string, MessageQueue[]>();
    for (const queue of queues) byBroker.set(queue.brokerName, [...(byBroker.get(queue.brokerName) ?? []), queue]);
    await Promise.all(
      [...byBroker.values()].map(async (list) => {
        try {
          const address = await this.instance.brokerAddressOf(list[0] as MessageQueue);
          await unlockBatchMq(this.instance, address, this.group, list);
        } catch (err) {
          log.debug({ err }, 'unlocking queues failed; the broker lock expires by itself');
        }
      }),
    );
  }

  // Reset by the broker (RESET_CONSUMER_CLIENT_OFFSET)

  /** Restarts the owned queues among `offsets` from the given offsets (DefaultMQPushConsumerImpl.resetOffsetByTimeStamp). */
  async resetOffset(topic: string, offsets: readonly { queue: MessageQueue; offset: number }[]): Promise<void> {
    if (!this.running) return;
    for (const { queue, offset } of offsets) {
      if (queue.topic !== topic) continue;
      const key = queueKey(queue);
      const old = this.processQueues.get(key);
      if (old === undefined) continue;
      old.drop();
      this.processQueues.delete(key);
      if (old.consuming !== undefined) await old.consuming;
      this.offsetStore.update(queue, offset, false);
      await this.offsetStore.persist(queue);
      if (!this.running || this.processQueues.has(key)) continue;
      const pq = new ProcessQueue(queue, offset);
      pq.locked = old.locked;
      pq.lastLockMs = old.lastLockMs;
      this.processQueues.set(key, pq);
      log.info({ queue: key, offset, group: this.group }, 'offset reset by the broker');
      void this.pullLoop(pq);
    }
  }
}
