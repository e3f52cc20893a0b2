/**
 * A key -> latest value table kept in an engine topic, compacted by reading: every put is a message
 * (key in `mqtt.key`, an empty body deletes), written to the topic's first queue so the order is
 * total; at start the whole topic is replayed and the last value per key wins, and afterwards the
 * topic is followed so that other gateways' writes show up too. The retained-message store and the
 * persistent-session store are two such tables. Old entries stay in the engine until its retention
 * removes them; replay cost grows with the topic, which is acceptable for these small tables.
 */
import { ErrorCode, RbError } from '../../engine/common/errors.js';
import type { MessageExt, MessageQueue, Producer, PullConsumer } from '../../engine/client/index.js';
import { queueKey } from '../../engine/client/index.js';
import { type FollowerOptions, TopicFollower } from './topic-follower.js';

/** Property holding the table key. */
export const KEY_PROPERTY = 'mqtt.key';
/** Property marking a delete (the engine refuses empty bodies, so a delete carries one byte). */
export const DELETED_PROPERTY = 'mqtt.deleted';

export interface KeyedEntry {
  key: string;
  body: Buffer;
  properties: Record<string, string>;
}

interface Waiter {
  queueKey: string;
  queueOffset: number;
  resolve: () => void;
}

/** A replicated table in one engine topic. */
export class KeyedLog {
  private readonly entries = new Map<string, KeyedEntry>();
  private readonly follower: TopicFollower;
  private readonly waiters = new Set<Waiter>();
  private started = false;
  /** The last applied queue offset per queue key. */
  private readonly applied = new Map<string, number>();

  constructor(
    private readonly producer: Producer,
    private readonly consumer: PullConsumer,
    readonly topic: string,
    options: FollowerOptions,
    private readonly applyTimeoutMs = 10_000,
  ) {
    this.follower = new TopicFollower(consumer, topic, (message, queue) => this.apply(message, queue), options);
  }

  /** Replays the topic (if it exists) and resolves when every message stored before the call is applied. */
  async start(): Promise<void> {
    this.started = await this.follower.start({ kind: 'begin' });
    if (!this.started) {
      // Create the topic now (a delete of the empty key), so the first real put is not slowed down.
      await this.put('', Buffer.alloc(0));
      return;
    }
    // Catch up: wait until each queue's reader passed the end seen now.
    const ends = await Promise.all(
      [...this.follower.nextOffsets.keys()].map(async (key) => ({ key, end: await this.endOf(key) })),
    );
    await Promise.all(ends.map(({ key, end }) => this.waitApplied(key, end - 1)));
  }

  stop(): void {
    this.follower.stop();
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters.clear();
  }

  get(key: string): KeyedEntry | undefined {
    return this.entries.get(key);
  }

  values(): IterableIterator<KeyedEntry> {
    return this.entries.values();
  }

  get size(): number {
    return this.entries.size;
  }

  /** Stores a value (an empty body deletes) and resolves once this table has applied it. */
  async put(key: string, body: Buffer, properties: Record<string, string> = {}): Promise<void> {
    const deleted = body.length === 0;
    const result = await this.producer.send(
      {
        topic: this.topic,
        body: deleted ? Buffer.from([0]) : body,
        keys: key.length > 0 ? [key] : [],
        properties: { ...properties, [KEY_PROPERTY]: key, ...(deleted ? { [DELETED_PROPERTY]: '1' } : {}) },
      },
      { selector: (queues) => firstQueue(queues) },
    );
    if (!this.started) {
      // The topic was just created by this send: start reading it from the beginning.
      this.started = await this.follower.startWhenRouted({ kind: 'begin' });
      if (!this.started) throw new RbError(ErrorCode.NoRoute, `cannot read ${this.topic} after writing to it`);
    }
    await this.waitApplied(queueKey(result.messageQueue), result.queueOffset);
  }

  private apply(message: MessageExt, queue: MessageQueue): void {
    const key = message.properties[KEY_PROPERTY];
    if (key !== undefined) {
      if (message.properties[DELETED_PROPERTY] === '1') this.entries.delete(key);
      else this.entries.set(key, { key, body: message.body, properties: message.properties });
    }
    const qk = queueKey(queue);
    this.applied.set(qk, message.queueOffset);
    for (const waiter of this.waiters) {
      if (waiter.queueKey === qk && waiter.queueOffset <= message.queueOffset) {
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  private endOf(key: string): Promise<number> {
    const [topic, brokerName, queueId] = key.split('@');
    return this.consumer.maxOffset({
      topic: topic as string,
      brokerName: brokerName as string,
      queueId: Number(queueId),
    });
  }

  private waitApplied(qk: string, queueOffset: number): Promise<void> {
    if (queueOffset < 0 || (this.applied.get(qk) ?? -1) >= queueOffset) return Promise.resolve();
    if ((this.follower.nextOffsets.get(qk) ?? 0) > queueOffset) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new RbError(ErrorCode.RequestTimeout, `${this.topic} did not apply offset ${queueOffset} in time`));
      }, this.applyTimeoutMs);
      const waiter: Waiter = {
        queueKey: qk,
        queueOffset,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.waiters.add(waiter);
    });
  }
}

function firstQueue(queues: readonly MessageQueue[]): MessageQueue {
  const sorted = [...queues].sort((a, b) =>
    a.brokerName === b.brokerName ? a.queueId - b.queueId : a.brokerName < b.brokerName ? -1 : 1,
  );
  const first = sorted[0];
  if (first === undefined) throw new RbError(ErrorCode.NoRoute, 'topic has no writable queue');
  return first;
}
