/**
 * Reading engine topics for the MQTT front end: a TopicFollower pulls every queue of one engine
 * topic from chosen queue offsets with long polling and hands each message, in queue order, to a
 * callback; a TopicDirectory keeps the set of engine topics (from the NameServer's topic list,
 * refreshed, plus topics this server writes to) so that first-level wildcards can span topics.
 * Offsets, groups and what a message means belong to the callers (fanout, sessions, stores).
 */
import { createLogger } from '../../engine/common/logger.js';
import {
  type AdminClient,
  type MessageExt,
  type MessageQueue,
  type PullConsumer,
  queueKey,
} from '../../engine/client/index.js';

const log = createLogger('mqtt-follower');

/** Where a queue starts: an explicit queue offset, the queue's end, or the first message at or after a time. */
export type StartPosition =
  | { kind: 'end' }
  | { kind: 'begin' }
  | { kind: 'time'; timestampMs: number }
  | { kind: 'offsets'; fallback: StartPosition; offsets: (queue: MessageQueue) => Promise<number> };

export interface FollowerOptions {
  /** Long-polling hold per pull. */
  pollSuspendMs: number;
  /** Pause after a failed pull. */
  retryDelayMs: number;
  /** Messages per pull (RocketMQ caps at 32). */
  pullBatchSize: number;
}

export type MessageCallback = (message: MessageExt, queue: MessageQueue) => Promise<void> | void;

/** Follows every queue of one engine topic. */
export class TopicFollower {
  /** The next queue offset to read, per queue key. */
  readonly nextOffsets = new Map<string, number>();
  /**
   * Per queue key, the offset below which every message has been handed on: by this follower, or
   * by its owner through claim() (messages it delivered itself).
   */
  private readonly handedOn = new Map<string, number>();
  /** Per queue key, the end of the last claimed range: pulled messages below it are skipped. */
  private readonly claimedEnd = new Map<string, number>();
  private running = false;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly wakers = new Set<() => void>();

  constructor(
    private readonly consumer: PullConsumer,
    readonly topic: string,
    private readonly onMessage: MessageCallback,
    private readonly options: FollowerOptions,
  ) {}

  /**
   * Positions every queue and starts the pull loops. Resolves false when the topic does not exist
   * yet (nothing started); positions are fixed when it resolves, so later messages are not missed.
   */
  async start(position: StartPosition): Promise<boolean> {
    let queues: MessageQueue[];
    try {
      queues = await this.consumer.fetchQueues(this.topic);
    } catch (err) {
      log.debug({ err, topic: this.topic }, 'topic has no route yet');
      return false;
    }
    if (queues.length === 0) return false;
    const starts = await Promise.all(queues.map((queue) => this.positionOf(queue, position)));
    this.running = true;
    queues.forEach((queue, i) => {
      this.nextOffsets.set(queueKey(queue), starts[i] as number);
      this.handedOn.set(queueKey(queue), starts[i] as number);
      void this.loop(queue);
    });
    return true;
  }

  /**
   * start() again until the topic has a route: a topic just created by a send reaches the NameServer
   * with the broker's next registration, a moment later. Gives up (false) after `attempts`.
   */
  async startWhenRouted(position: StartPosition, attempts = 50, delayMs = 100): Promise<boolean> {
    for (let attempt = 0; attempt < attempts && !this.stopped; attempt++) {
      if (await this.start(position)) return true;
      await this.pause(delayMs);
    }
    return false;
  }

  stop(): void {
    this.stopped = true;
    this.running = false;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const wake of this.wakers) wake();
    this.wakers.clear();
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Takes over `count` messages from `queueOffset` of a queue: true (and the follower will skip
   * them) when every message before them has been handed on and none of them has, else false and
   * the follower hands them on when it reads them. Lets the owner deliver what it has just stored
   * itself, exactly once and in queue order.
   */
  claim(queue: MessageQueue, queueOffset: number, count: number): boolean {
    if (!this.running) return false;
    const key = queueKey(queue);
    if (this.handedOn.get(key) !== queueOffset) return false;
    this.handedOn.set(key, queueOffset + count);
    this.claimedEnd.set(key, queueOffset + count);
    return true;
  }

  private async positionOf(queue: MessageQueue, position: StartPosition): Promise<number> {
    switch (position.kind) {
      case 'end':
        return this.consumer.maxOffset(queue);
      case 'begin':
        return this.consumer.minOffset(queue);
      case 'time':
        return this.consumer.searchOffset(queue, position.timestampMs);
      case 'offsets': {
        const stored = await position.offsets(queue);
        return stored >= 0 ? stored : this.positionOf(queue, position.fallback);
      }
    }
  }

  private async loop(queue: MessageQueue): Promise<void> {
    const key = queueKey(queue);
    /** The last pull found only claimed messages: the owner delivers what arrives, read little. */
    let onlyClaimed = false;
    // Bounded by `running`: stop() ends every loop after its pull in flight returns.
    while (this.running) {
      // Claimed messages need not be read at all.
      const queueOffset = Math.max(this.nextOffsets.get(key) ?? 0, this.claimedEnd.get(key) ?? 0);
      try {
        const result = await this.consumer.pull(queue, '*', queueOffset, onlyClaimed ? 1 : this.options.pullBatchSize, {
          suspendMs: this.options.pollSuspendMs,
        });
        if (!this.running) return;
        onlyClaimed = false;
        if (result.status === 'FOUND') {
          onlyClaimed = result.messages.length > 0;
          for (const message of result.messages) {
            if (!this.running) return;
            if (message.queueOffset < (this.claimedEnd.get(key) ?? 0)) continue;
            onlyClaimed = false;
            // Synchronous callbacks (the fanout) run back to back, without a promise job each.
            const handled = this.onMessage(message, queue);
            if (handled !== undefined) await handled;
            if (message.queueOffset >= (this.handedOn.get(key) ?? 0)) this.handedOn.set(key, message.queueOffset + 1);
          }
        }
        const next =
          result.status === 'OFFSET_ILLEGAL'
            ? Math.min(Math.max(result.nextBeginOffset, result.minOffset), result.maxOffset)
            : result.nextBeginOffset;
        if (this.running) {
          this.nextOffsets.set(key, next);
          if (result.status === 'OFFSET_ILLEGAL') {
            // The queue is not what was read (e.g. truncated): what is there now is handed on anew.
            this.handedOn.set(key, next);
            this.claimedEnd.delete(key);
          } else if (next > (this.handedOn.get(key) ?? 0)) {
            this.handedOn.set(key, next);
          }
        }
      } catch (err) {
        if (!this.running) return;
        log.warn({ err, topic: this.topic, queueId: queue.queueId }, 'pull failed; retrying');
        await this.pause(this.options.retryDelayMs);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.timers.delete(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.timers.add(timer);
      this.wakers.add(wake);
    });
  }
}

/** Engine topics that are never MQTT topics: RocketMQ's and the MQTT front end's own. */
export function isSystemTopic(topic: string): boolean {
  return (
    topic.startsWith('%RETRY%') ||
    topic.startsWith('%DLQ%') ||
    topic.startsWith('%SYS%') ||
    topic.startsWith('rmq_sys_') ||
    topic.startsWith('RMQ_SYS_') ||
    topic.startsWith('RB_MQTT_') ||
    topic === 'TBW102' ||
    topic === 'SCHEDULE_TOPIC_XXXX' ||
    topic === 'OFFSET_MOVED_EVENT' ||
    topic === 'SELF_TEST_TOPIC' ||
    topic === 'BenchmarkTest'
  );
}

/**
 * The engine topics first-level wildcards span: the NameServer's topic list (system topics left
 * out), refreshed every `refreshIntervalMs`, plus topics this server has just written to, which
 * are announced at once so a `#` subscriber does not wait for the next refresh.
 */
export class TopicDirectory {
  private readonly topics = new Set<string>();
  private readonly listeners = new Set<(topic: string) => void>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly admin: AdminClient,
    private readonly refreshIntervalMs: number,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Called with every topic that appears, once. */
  onTopic(listener: (topic: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Topics known now, system topics excluded. */
  known(): string[] {
    return [...this.topics];
  }

  /** Records a topic that exists (this server just wrote to it, or a reader found it). */
  announce(topic: string): void {
    if (isSystemTopic(topic) || this.topics.has(topic)) return;
    this.topics.add(topic);
    for (const listener of this.listeners) listener(topic);
  }

  private async refresh(): Promise<void> {
    try {
      for (const topic of await this.admin.fetchAllTopicList()) this.announce(topic);
    } catch (err) {
      log.warn({ err }, 'topic list refresh failed');
    }
  }
}
