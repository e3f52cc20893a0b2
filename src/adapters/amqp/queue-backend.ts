/**
 * What an AMQP queue needs from the engine, as one small interface (QueueBackend), and its first
 * implementation on the PullConsumer (PullQueueBackend).
 *
 * PullQueueBackend: the queue's consumer group pulls every subscribed topic's message queues with
 * long polling and keeps, per message queue, the offsets handed out but not yet acked. The offset
 * committed to the broker is the lowest unacked one (or the next offset to pull), so after a
 * restart every message not acked is delivered again: at least once, never dropped. Acks may
 * arrive in any order. A nack with requeue puts the message back at the head of the ready list
 * with `redelivered` set. Limits: one gateway process per queue (two processes pulling one group
 * would both deliver every message); the RocketMQ 5 SimpleConsumer (pop) lifts that.
 */
import type { MessageExt, MessageQueue, PullResult, Transport } from '../../engine/client/index.js';
import { PullConsumer, queueKey } from '../../engine/client/index.js';
import { ErrorCode, isRbError } from '../../engine/common/errors.js';
import { ChurnMap } from '../../engine/common/churn-map.js';
import { createLogger } from '../../engine/common/logger.js';
import { AmqpProperty } from './mapping.js';

const log = createLogger('amqp-queue');

/** A message taken from a queue, waiting for ack or nack. */
export interface QueueMessage {
  /** Backend-unique id for ack/nack. */
  readonly id: number;
  readonly message: MessageExt;
  /** True when the message was handed out before (nack/requeue, recover, lost connection). */
  redelivered: boolean;
}

/** The per-message-ack primitive an AMQP queue runs on. */
export interface QueueBackend {
  start(): Promise<void>;
  /**
   * Subscribe to exactly these topics. `fromEnd` topics are new bindings: they start at the
   * topic's current end, so earlier messages are not delivered; others resume at the group's offset.
   */
  setTopics(topics: ReadonlySet<string>, fromEnd: ReadonlySet<string>): Promise<void>;
  /** Takes up to `max` ready messages (synchronous: from what has been fetched). */
  receive(max: number): QueueMessage[];
  /** Takes (as receive does) up to `max` ready messages the predicate picks, wherever they sit. */
  takeWhere(predicate: (message: QueueMessage) => boolean, max: number): QueueMessage[];
  /** Ready messages fetched so far (no waiting). */
  readyCount(): number;
  /** Body bytes of those (x-max-length-bytes). */
  readyBytes(): number;
  ack(id: number): void;
  /** requeue: deliver again (redelivered); otherwise drop it like an ack. */
  nack(id: number, requeue: boolean): void;
  /** Ready (not handed out) messages; waits briefly for fetching to catch up with the topics' ends. */
  messageCount(): Promise<number>;
  /** Drops every ready message; returns how many. */
  purge(): Promise<number>;
  /**
   * Whether anything here wants messages (consumers, or TTL/max-length to enforce). A backend may
   * stop fetching ahead without demand, so another gateway's consumers get the messages.
   */
  setDemand(demand: boolean): void;
  /** Called whenever messages become ready. */
  onReady(listener: () => void): void;
  /** A topic was just written to: look for its route now instead of at the next retry. */
  topicWritten(topic: string): void;
  /** Stops fetching; offsets of acked messages are committed. */
  stop(): Promise<void>;
}

export interface PullQueueBackendOptions {
  group: string;
  nameServers: readonly string[];
  transport?: Transport;
  /** Whether a fetched message belongs to this queue (routing against the bindings). */
  accepts: (message: MessageExt) => boolean;
  /** Messages fetched ahead of consumers, at most (default 1000). */
  readyLimit?: number;
  /** Long polling time of each pull (default 1000 ms). */
  pollMs?: number;
  /** Wait after a failed pull or a missing topic (default 500 ms). */
  retryMs?: number;
}

interface Entry extends QueueMessage {
  readonly cursor: Cursor;
  readonly queueOffset: number;
}

/** Pull state of one message queue. */
interface Cursor {
  readonly mq: MessageQueue;
  readonly key: string;
  nextOffset: number;
  /** Offsets handed out or ready, not yet acked. */
  readonly pending: Set<number>;
  lastCommitted: number;
  active: boolean;
  /** Drop messages below this offset (purge). */
  purgedBelow: number;
}

interface TopicState {
  topic: string;
  active: boolean;
  cursors: Map<string, Cursor>;
  fromEnd: boolean;
  wake: (() => void) | undefined;
}

const COMMIT_DELAY_MS = 200;

/**
 * What every QueueBackend keeps the same way: the ready list (fetched, not handed out, in delivery
 * order), the unacked entries by id, the onReady listeners and the fetchers waiting for room in the
 * ready list. Subclasses fetch into `ready` and say what releasing an entry means for the engine.
 */
export abstract class ReadyListBackend<E extends QueueMessage> {
  protected readonly ready: E[] = [];
  protected readonly unacked = new ChurnMap<number, E>();
  private drainWaiters: (() => void)[] = [];
  private readonly listeners: (() => void)[] = [];

  /** `readyLimit`: how many messages may be fetched ahead into the ready list (default 1000). */
  constructor(protected readonly readyLimit = 1000) {}

  /** Lets go of an entry: acked or nacked without requeue (`drop`), or nacked but no longer read here (`return`). */
  protected abstract release(entry: E, how: 'drop' | 'return'): void;

  /** Whether the entry's topic is still read here, so a nacked entry can go back to the ready list. */
  protected abstract stillRead(entry: E): boolean;

  /** Fetches (briefly, bounded) what the topics hold right now, so a count sees it. */
  protected abstract catchUp(): Promise<void>;

  /** Whether the ready list has room after a receive, so fetchers waiting for room should go on. */
  protected hasRoom(): boolean {
    return true;
  }

  receive(max: number): QueueMessage[] {
    const taken = this.ready.splice(0, Math.max(0, max));
    for (const entry of taken) this.unacked.set(entry.id, entry);
    if (taken.length > 0 && this.hasRoom()) this.wakeDrainWaiters();
    return taken;
  }

  takeWhere(predicate: (message: QueueMessage) => boolean, max: number): QueueMessage[] {
    const taken = takeMatching(this.ready, this.unacked, predicate, max);
    if (taken.length > 0) this.wakeDrainWaiters();
    return taken;
  }

  readyCount(): number {
    return this.ready.length;
  }

  readyBytes(): number {
    return sumBodyBytes(this.ready);
  }

  async messageCount(): Promise<number> {
    await this.catchUp();
    return this.ready.length;
  }

  ack(id: number): void {
    const entry = this.unacked.get(id);
    if (entry === undefined) return;
    this.unacked.delete(id);
    this.release(entry, 'drop');
  }

  nack(id: number, requeue: boolean): void {
    const entry = this.unacked.get(id);
    if (entry === undefined) return;
    this.unacked.delete(id);
    if (!requeue || !this.stillRead(entry)) {
      this.release(entry, requeue ? 'return' : 'drop');
      return;
    }
    requeueAtHead(this.ready, entry);
    this.emitReady();
  }

  onReady(listener: () => void): void {
    this.listeners.push(listener);
  }

  protected emitReady(): void {
    for (const listener of this.listeners) listener();
  }

  /** Resolves when a receive, take or drop has made room in the ready list. */
  protected waitForRoom(): Promise<void> {
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  protected wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  }
}

export class PullQueueBackend extends ReadyListBackend<Entry> implements QueueBackend {
  private readonly consumer: PullConsumer;
  private readonly topics = new Map<string, TopicState>();
  private readonly pollMs: number;
  private readonly retryMs: number;
  private nextId = 1;
  private running = false;
  private commitTimer: NodeJS.Timeout | undefined;
  private readonly timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();

  constructor(private readonly options: PullQueueBackendOptions) {
    super(options.readyLimit);
    const consumerOptions: ConstructorParameters<typeof PullConsumer>[0] = {
      group: options.group,
      nameServers: options.nameServers,
    };
    if (options.transport !== undefined) consumerOptions.transport = options.transport;
    this.consumer = new PullConsumer(consumerOptions);
    this.pollMs = options.pollMs ?? 1000;
    this.retryMs = options.retryMs ?? 500;
  }

  async start(): Promise<void> {
    await this.consumer.start();
    this.running = true;
  }

  async setTopics(topics: ReadonlySet<string>, fromEnd: ReadonlySet<string>): Promise<void> {
    for (const [topic, state] of this.topics) {
      if (topics.has(topic)) continue;
      state.active = false;
      for (const cursor of state.cursors.values()) cursor.active = false;
      state.wake?.();
      this.topics.delete(topic);
      this.dropReady((entry) => entry.message.topic === topic);
    }
    const starting: Promise<void>[] = [];
    for (const topic of topics) {
      if (this.topics.has(topic)) continue;
      const state: TopicState = {
        topic,
        active: true,
        cursors: new Map(),
        fromEnd: fromEnd.has(topic),
        wake: undefined,
      };
      this.topics.set(topic, state);
      starting.push(this.openTopic(state));
    }
    await Promise.all(starting);
  }

  async purge(): Promise<number> {
    await this.catchUp();
    return this.dropReady(() => true);
  }

  /** Offsets only move when messages are taken, so fetching ahead costs other gateways nothing here. */
  setDemand(): void {}

  topicWritten(topic: string): void {
    this.topics.get(topic)?.wake?.();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const state of this.topics.values()) {
      state.active = false;
      for (const cursor of state.cursors.values()) cursor.active = false;
      state.wake?.();
    }
    for (const each of this.timers) {
      clearTimeout(each.timer);
      each.resolve();
    }
    this.timers.clear();
    this.wakeDrainWaiters();
    if (this.commitTimer !== undefined) clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    await this.commit().catch((err: unknown) => log.warn({ err, group: this.options.group }, 'final commit failed'));
    await this.consumer.shutdown();
  }

  // ---------------------------------------------------------------------------------------------

  protected override hasRoom(): boolean {
    return this.ready.length < this.readyLimit;
  }

  protected stillRead(entry: Entry): boolean {
    return entry.cursor.active;
  }

  /** Removes matching ready entries as if acked; returns how many. */
  private dropReady(predicate: (entry: Entry) => boolean): number {
    let dropped = 0;
    for (let i = this.ready.length - 1; i >= 0; i--) {
      const entry = this.ready[i] as Entry;
      if (!predicate(entry)) continue;
      this.ready.splice(i, 1);
      this.release(entry);
      dropped++;
    }
    if (dropped > 0) this.wakeDrainWaiters();
    return dropped;
  }

  /** Acked, dropped or not requeueable alike: the offset no longer holds the commit back. */
  protected release(entry: Entry): void {
    entry.cursor.pending.delete(entry.queueOffset);
    this.scheduleCommit();
  }

  private scheduleCommit(): void {
    if (this.commitTimer !== undefined || !this.running) return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined;
      this.commit().catch((err: unknown) => log.warn({ err, group: this.options.group }, 'offset commit failed'));
    }, COMMIT_DELAY_MS);
  }

  /** Commits, per message queue, the lowest offset not yet acked. */
  private async commit(): Promise<void> {
    const updates: Promise<void>[] = [];
    for (const state of this.topics.values()) {
      for (const cursor of state.cursors.values()) {
        let low = cursor.nextOffset;
        for (const offset of cursor.pending) if (offset < low) low = offset;
        if (low === cursor.lastCommitted) continue;
        cursor.lastCommitted = low;
        updates.push(this.consumer.updateOffset(cursor.mq, low));
      }
    }
    await Promise.all(updates);
  }

  /** Waits (bounded) until every cursor has pulled up to its queue's current end. */
  protected async catchUp(): Promise<void> {
    const ends: { cursor: Cursor; end: number }[] = [];
    for (const state of this.topics.values()) {
      for (const cursor of state.cursors.values()) {
        try {
          ends.push({ cursor, end: await this.consumer.maxOffset(cursor.mq) });
        } catch {
          // Unknown end: do not wait for this queue.
        }
      }
    }
    const deadline = Date.now() + 1000;
    while (Date.now() < deadline && this.running) {
      if (ends.every(({ cursor, end }) => cursor.nextOffset >= end || this.ready.length >= this.readyLimit)) return;
      await this.sleep(10);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const handle = {
        timer: setTimeout(() => {
          this.timers.delete(handle);
          resolve();
        }, ms),
        resolve,
      };
      this.timers.add(handle);
    });
  }

  /** Finds the topic's queues (retrying while the topic does not exist) and starts a loop per queue. */
  private async openTopic(state: TopicState): Promise<void> {
    const queues = await this.fetchQueues(state);
    if (queues === undefined) {
      // Not there yet: everything it will ever hold comes after the binding, so start at 0.
      void this.waitForTopic(state);
      return;
    }
    await this.openCursors(state, queues, state.fromEnd);
  }

  private async fetchQueues(state: TopicState): Promise<MessageQueue[] | undefined> {
    try {
      return await this.consumer.fetchQueues(state.topic);
    } catch (err) {
      if (!isRbError(err, ErrorCode.TopicNotExist)) {
        log.warn({ err, topic: state.topic, group: this.options.group }, 'cannot fetch the queues of a topic');
      }
      return undefined;
    }
  }

  private async waitForTopic(state: TopicState): Promise<void> {
    for (let attempt = 0; state.active && this.running && attempt < Number.MAX_SAFE_INTEGER; attempt++) {
      await new Promise<void>((resolve) => {
        const handle = {
          timer: setTimeout(() => {
            this.timers.delete(handle);
            state.wake = undefined;
            resolve();
          }, this.retryMs),
          resolve,
        };
        this.timers.add(handle);
        state.wake = () => {
          clearTimeout(handle.timer);
          this.timers.delete(handle);
          state.wake = undefined;
          resolve();
        };
      });
      if (!state.active || !this.running) return;
      const queues = await this.fetchQueues(state);
      if (queues !== undefined) {
        await this.openCursors(state, queues, false);
        return;
      }
    }
  }

  private async openCursors(state: TopicState, queues: MessageQueue[], fromEnd: boolean): Promise<void> {
    for (const mq of queues) {
      const key = queueKey(mq);
      if (state.cursors.has(key)) continue;
      let nextOffset: number;
      if (fromEnd) {
        nextOffset = await this.consumer.maxOffset(mq);
        await this.consumer.updateOffset(mq, nextOffset);
      } else {
        nextOffset = await this.consumer.fetchOffset(mq);
        if (nextOffset < 0) nextOffset = 0;
      }
      const cursor: Cursor = {
        mq,
        key,
        nextOffset,
        pending: new Set(),
        lastCommitted: nextOffset,
        active: state.active,
        purgedBelow: 0,
      };
      state.cursors.set(key, cursor);
      void this.pullLoop(cursor);
    }
  }

  private async pullLoop(cursor: Cursor): Promise<void> {
    for (let round = 0; cursor.active && this.running && round < Number.MAX_SAFE_INTEGER; round++) {
      if (this.ready.length >= this.readyLimit) {
        await this.waitForRoom();
        continue;
      }
      let result: PullResult;
      try {
        result = await this.consumer.pull(cursor.mq, '*', cursor.nextOffset, 32, { suspendMs: this.pollMs });
      } catch (err) {
        if (!cursor.active || !this.running) return;
        log.debug({ err, queue: cursor.key, group: this.options.group }, 'pull failed; retrying');
        await this.sleep(this.retryMs);
        continue;
      }
      if (!cursor.active || !this.running) return;
      const from = cursor.nextOffset;
      let added = 0;
      for (const message of result.messages) {
        if (message.queueOffset < from || message.queueOffset < cursor.purgedBelow) continue;
        if (!this.options.accepts(message)) continue;
        cursor.pending.add(message.queueOffset);
        this.ready.push({ id: this.nextId++, message, redelivered: false, cursor, queueOffset: message.queueOffset });
        added++;
      }
      if (result.status === 'OFFSET_ILLEGAL') {
        cursor.nextOffset = Math.max(result.minOffset, Math.min(result.nextBeginOffset, result.maxOffset));
      } else if (result.nextBeginOffset > cursor.nextOffset) {
        cursor.nextOffset = result.nextBeginOffset;
      }
      if (added > 0) this.emitReady();
      else this.scheduleCommit();
    }
  }
}

/** Body bytes of a stored message as AMQP sees it (an empty body is stored as one byte). */
export function bodyBytesOf(message: Pick<MessageExt, 'properties' | 'body'>): number {
  return message.properties[AmqpProperty.EmptyBody] === '1' ? 0 : message.body.length;
}

/** Body bytes of ready entries: summed when asked, only queues with x-max-length-bytes ask. */
export function sumBodyBytes(entries: readonly QueueMessage[]): number {
  let bytes = 0;
  for (const entry of entries) bytes += bodyBytesOf(entry.message);
  return bytes;
}

/**
 * Moves up to `max` ready entries that match `predicate` into `unacked` (by id), keeping the order of
 * the rest: the shared step of basic.get and consumers with per-message filters in every backend.
 */
export function takeMatching<E extends QueueMessage>(
  ready: E[],
  unacked: ChurnMap<number, E>,
  predicate: (message: QueueMessage) => boolean,
  max: number,
): E[] {
  const taken: E[] = [];
  for (let i = 0; i < ready.length && taken.length < max;) {
    const entry = ready[i] as E;
    if (predicate(entry)) {
      ready.splice(i, 1);
      unacked.set(entry.id, entry);
      taken.push(entry);
    } else {
      i++;
    }
  }
  return taken;
}

/**
 * Puts a nacked entry back at the head of `ready`, marked redelivered, in id (offset) order among the
 * other requeued entries, so requeued messages go out again before new ones and in their first order.
 */
export function requeueAtHead<E extends QueueMessage>(ready: E[], entry: E): void {
  entry.redelivered = true;
  let at = 0;
  while (at < ready.length && (ready[at] as E).redelivered && (ready[at] as E).id < entry.id) at++;
  ready.splice(at, 0, entry);
}
