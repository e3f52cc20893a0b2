/**
 * A key -> latest value table kept in an engine topic, compacted by reading: every put is a message
 * (key in `mqtt.key`, an empty body deletes), written to the topic's first queue so the order is
 * total; at start the whole topic is replayed and the last value per key wins, and afterwards the
 * topic is followed so that other gateways' writes show up too. The retained-message store and the
 * persistent-session store are two such tables. Replay cost grows with the topic, which is
 * acceptable for these small tables.
 *
 * CommitLog retention deletes old segments whatever topic they hold (72 h by default), and with them
 * an entry nobody wrote again since: a retained message or a session would be gone at the next
 * restart. keepFresh() writes such entries again before that (each gateway checks; an entry another
 * gateway rewrote is young again when the follower applies it).
 */
import { ErrorCode, RbError } from '../../engine/common/errors.js';
import type { MessageExt, MessageQueue, Producer, PullConsumer } from '../../engine/client/index.js';
import { queueKey } from '../../engine/client/index.js';
import { createLogger } from '../../engine/common/logger.js';
import { type FollowerOptions, TopicFollower } from './topic-follower.js';

const log = createLogger('mqtt-table');

/** Property holding the table key. */
export const KEY_PROPERTY = 'mqtt.key';
/** Property marking a delete (the engine refuses empty bodies, so a delete carries one byte). */
export const DELETED_PROPERTY = 'mqtt.deleted';

export interface KeyedEntry {
  key: string;
  body: Buffer;
  properties: Record<string, string>;
  /** When the broker stored the value. */
  storedAtMs: number;
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
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing = false;

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

  /**
   * Every `intervalMs`, writes again (same key, body and properties) each entry stored more than
   * `maxAgeMs` ago, so retention never deletes the only copy of a live entry.
   */
  keepFresh(intervalMs: number, maxAgeMs: number): void {
    clearInterval(this.refreshTimer);
    this.refreshTimer = setInterval(() => void this.refreshOlderThan(maxAgeMs), intervalMs);
    this.refreshTimer.unref();
  }

  /** Writes again the entries stored more than `maxAgeMs` ago; returns how many. */
  async refreshOlderThan(maxAgeMs: number): Promise<number> {
    if (this.refreshing) return 0;
    this.refreshing = true;
    let rewritten = 0;
    try {
      const cutoffMs = Date.now() - maxAgeMs;
      const stale = [...this.entries.values()].filter((entry) => entry.storedAtMs < cutoffMs);
      for (const candidate of stale) {
        // Read again right before the write: a newer put meanwhile is not overwritten.
        const entry = this.entries.get(candidate.key);
        if (entry === undefined || entry.storedAtMs >= cutoffMs || !this.started) continue;
        await this.put(entry.key, entry.body, tableProperties(entry.properties));
        rewritten++;
      }
    } catch (err) {
      log.warn({ err, topic: this.topic }, 'rewriting old entries failed; will retry');
    } finally {
      this.refreshing = false;
    }
    return rewritten;
  }

  stop(): void {
    clearInterval(this.refreshTimer);
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
      else {
        this.entries.set(key, {
          key,
          body: message.body,
          properties: message.properties,
          storedAtMs: message.storeTimestamp,
        });
      }
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

/** The properties a put gave (named `mqtt.`), without the key; not the engine's own (UNIQ_KEY...). */
function tableProperties(properties: Record<string, string>): Record<string, string> {
  const own: Record<string, string> = {};
  for (const [name, value] of Object.entries(properties)) {
    if (name.startsWith('mqtt.') && name !== KEY_PROPERTY && name !== DELETED_PROPERTY) own[name] = value;
  }
  return own;
}

function firstQueue(queues: readonly MessageQueue[]): MessageQueue {
  const sorted = [...queues].sort((a, b) =>
    a.brokerName === b.brokerName ? a.queueId - b.queueId : a.brokerName < b.brokerName ? -1 : 1,
  );
  const first = sorted[0];
  if (first === undefined) throw new RbError(ErrorCode.NoRoute, 'topic has no writable queue');
  return first;
}
