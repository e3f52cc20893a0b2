/**
 * Persistent MQTT sessions (clean session off) on engine consumer groups. Each session is the group
 * `mqtt-session-<clientId escaped>`; its subscriptions are kept in the RB_MQTT_SESSIONS table
 * (keyed-log.ts) and its progress is the group's committed queue offsets in the broker, so what
 * was published while the client was away is simply what lies past those offsets, also after a
 * restart of every process. While the client is connected, each engine topic its filters cover is
 * followed from the committed offsets; a QoS 1/2 delivery counts as done when the client answers
 * (PUBACK, or PUBREC for QoS 2, seen through the persistence hooks), a QoS 0 one when written. The
 * committed offset of a queue is its oldest delivery not done, so a disconnect or crash redelivers
 * (at least once) and never skips. Per-MQTT-topic order holds because publishes of one MQTT topic go
 * to one queue (server.ts) and a queue is delivered in order.
 */
import { createHash } from 'node:crypto';
import { TOPIC_MAX_LENGTH } from '../../engine/common/limits.js';
import { createLogger } from '../../engine/common/logger.js';
import {
  type MessageExt,
  type MessageQueue,
  PullConsumer,
  queueKey,
  type Transport,
} from '../../engine/client/index.js';
import { type AedesClientView, type DeliverFn, minQos } from './delivery-types.js';
import type { KeyedLog } from './keyed-log.js';
import { escapeTopicLevel, matchesFilter, mqttNameOfMessage, mqttPayloadOf, qosOfMessage } from './mapping.js';
import { type FollowerOptions, type StartPosition, type TopicDirectory, TopicFollower } from './topic-follower.js';

const log = createLogger('mqtt-session');

/** brokerId of session deliveries: aedes dedupes per brokerId by brokerCounter, which is our token. */
export const SESSION_BROKER_ID = 'rocketbridge-session';

/** One stored subscription of a persistent session. */
export interface StoredSubscription {
  topic: string;
  qos: number;
  subscribedAtMs: number;
}

export interface SessionRecord {
  clientId: string;
  subscriptions: StoredSubscription[];
}

export interface SessionManagerOptions {
  nameServers: readonly string[];
  transport: Transport;
  directory: TopicDirectory;
  table: KeyedLog;
  follower: FollowerOptions;
  /** Unacknowledged deliveries per session before reading pauses. */
  maxInflightPerSession: number;
  /** Offsets are committed at most this often per session. */
  commitIntervalMs: number;
}

interface ActiveFilter {
  filter: string;
  qos: number;
  func: DeliverFn;
  subscribedAtMs: number;
}

interface Delivery {
  queue: MessageQueue;
  queueOffset: number;
}

const SESSION_GROUP_PREFIX = 'mqtt-session-';

/** The group of a persistent session: the escaped client id, or a hash of it when that is too long. */
export function sessionGroupOf(clientId: string): string {
  try {
    const group = SESSION_GROUP_PREFIX + escapeTopicLevel(clientId);
    if (group.length <= TOPIC_MAX_LENGTH) return group;
  } catch {
    // Too long once escaped: fall through to the hash.
  }
  return SESSION_GROUP_PREFIX + 'h' + createHash('sha256').update(clientId, 'utf8').digest('hex');
}

/** The engine topics a filter covers now. */
function topicsOf(filter: string, directory: TopicDirectory): string[] {
  const first = filter.split('/')[0] as string;
  if (first === '+' || first === '#') return directory.known();
  return [escapeTopicLevel(first)];
}

class Session {
  readonly filters = new Map<string, ActiveFilter>();
  private readonly followers = new Map<string, TopicFollower>();
  private readonly tokens = new Map<number, Delivery>();
  private readonly messageIds = new Map<number, number>();
  /** Per queue key: queue offsets delivered and not done (with a count for overlapping filters). */
  private readonly pending = new Map<string, Map<number, number>>();
  /** Per queue key: one past the highest offset handed out. */
  private readonly reached = new Map<string, { queue: MessageQueue; next: number }>();
  private readonly capacityWaiters: (() => void)[] = [];
  private commitTimer: NodeJS.Timeout | undefined;
  private started: Promise<void> | undefined;
  private stopped = false;

  constructor(
    readonly clientId: string,
    private readonly consumer: PullConsumer,
    private readonly manager: SessionManager,
  ) {}

  start(): Promise<void> {
    this.started ??= this.consumer.start();
    return this.started;
  }

  async addFilter(filter: ActiveFilter, fresh: boolean): Promise<void> {
    await this.start();
    this.filters.set(filter.filter, filter);
    for (const topic of topicsOf(filter.filter, this.manager.directory)) {
      await this.follow(topic, fresh, filter.subscribedAtMs);
    }
  }

  /** Starts following a topic if a filter covers it and no follower runs. */
  async follow(topic: string, fresh: boolean, sinceMs: number, waitForRoute = false): Promise<void> {
    if (this.stopped || this.followers.has(topic)) return;
    const follower = new TopicFollower(
      this.consumer,
      topic,
      (message, queue) => this.onMessage(message, queue),
      this.manager.followerOptions,
    );
    this.followers.set(topic, follower);
    const position: StartPosition = fresh
      ? { kind: 'end' }
      : {
          kind: 'offsets',
          offsets: (queue) => this.consumer.fetchOffset(queue),
          fallback: { kind: 'time', timestampMs: sinceMs },
        };
    const started = waitForRoute ? await follower.startWhenRouted(position) : await follower.start(position);
    if (!started) {
      this.followers.delete(topic);
      return;
    }
    if (fresh) {
      // A new subscription starts at the end: record that, so a reconnect does not go back further.
      for (const [key, next] of follower.nextOffsets) {
        const [t, brokerName, queueId] = key.split('@');
        await this.consumer.updateOffset(
          { topic: t as string, brokerName: brokerName as string, queueId: Number(queueId) },
          next,
        );
      }
    }
  }

  coversTopic(topic: string): boolean {
    for (const filter of this.filters.keys()) {
      const first = filter.split('/')[0] as string;
      if (first === '+' || first === '#' || escapeTopicLevel(first) === topic) return true;
    }
    return false;
  }

  removeFunc(func: DeliverFn): boolean {
    for (const [name, filter] of this.filters) {
      if (filter.func === func) {
        this.filters.delete(name);
        return true;
      }
    }
    return false;
  }

  bindMessageId(messageId: number, token: number): void {
    if (this.tokens.has(token)) this.messageIds.set(messageId, token);
  }

  ackMessageId(messageId: number): void {
    const token = this.messageIds.get(messageId);
    if (token === undefined) return;
    this.messageIds.delete(messageId);
    this.done(token);
  }

  /** Stops reading and commits what is done; undelivered and unacknowledged messages stay for next time. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const follower of this.followers.values()) follower.stop();
    this.followers.clear();
    for (const wake of this.capacityWaiters.splice(0)) wake();
    if (this.commitTimer !== undefined) clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    try {
      await this.commit();
    } catch (err) {
      log.warn({ err, clientId: this.clientId }, 'committing session offsets failed');
    }
    await this.consumer.shutdown();
  }

  private async onMessage(message: MessageExt, queue: MessageQueue): Promise<void> {
    const key = queueKey(queue);
    const reached = this.reached.get(key);
    if (reached === undefined) this.reached.set(key, { queue, next: message.queueOffset + 1 });
    else reached.next = Math.max(reached.next, message.queueOffset + 1);
    const name = mqttNameOfMessage(message.topic, message.tags, message.properties);
    const publishedQos = qosOfMessage(message.properties);
    const matching = [...this.filters.values()].filter((filter) => matchesFilter(filter.filter, name));
    if (matching.length === 0) {
      this.scheduleCommit();
      return;
    }
    await this.waitForCapacity();
    if (this.stopped) return;
    const counts = this.pending.get(key) ?? new Map<number, number>();
    this.pending.set(key, counts);
    counts.set(message.queueOffset, (counts.get(message.queueOffset) ?? 0) + matching.length);
    await Promise.all(
      matching.map(
        (filter) =>
          new Promise<void>((resolve) => {
            const qos = minQos(publishedQos, filter.qos);
            const token = this.manager.nextToken();
            this.tokens.set(token, { queue, queueOffset: message.queueOffset });
            filter.func(
              {
                cmd: 'publish',
                topic: name,
                payload: mqttPayloadOf(message.body, message.properties),
                qos,
                retain: false,
                dup: false,
                brokerId: SESSION_BROKER_ID,
                brokerCounter: token,
              },
              () => {
                if (qos === 0) this.done(token);
                resolve();
              },
            );
          }),
      ),
    );
  }

  private done(token: number): void {
    const delivery = this.tokens.get(token);
    if (delivery === undefined) return;
    this.tokens.delete(token);
    const counts = this.pending.get(queueKey(delivery.queue));
    const left = (counts?.get(delivery.queueOffset) ?? 1) - 1;
    if (left <= 0) counts?.delete(delivery.queueOffset);
    else counts?.set(delivery.queueOffset, left);
    const wake = this.capacityWaiters.shift();
    if (wake !== undefined) wake();
    this.scheduleCommit();
  }

  private waitForCapacity(): Promise<void> {
    if (this.tokens.size < this.manager.maxInflight || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.capacityWaiters.push(resolve));
  }

  private scheduleCommit(): void {
    if (this.commitTimer !== undefined || this.stopped) return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined;
      this.commit().catch((err: unknown) => log.warn({ err, clientId: this.clientId }, 'commit failed'));
    }, this.manager.commitIntervalMs);
  }

  /** Commits per queue the oldest offset not done (or one past the last read). */
  private async commit(): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const [key, { queue, next }] of this.reached) {
      const counts = this.pending.get(key);
      const oldest = counts !== undefined && counts.size > 0 ? Math.min(...counts.keys()) : next;
      writes.push(this.consumer.updateOffset(queue, oldest));
    }
    await Promise.all(writes);
  }
}

/** All persistent sessions of this server. */
export class SessionManager {
  readonly directory: TopicDirectory;
  readonly followerOptions: FollowerOptions;
  readonly maxInflight: number;
  readonly commitIntervalMs: number;
  private readonly active = new Map<string, Session>();
  /** Sessions still committing after their client left; a reconnect waits for them. */
  private readonly stopping = new Map<string, Promise<void>>();
  /** Filters just stored by a SUBSCRIBE (not a restore): they start at the topic's end. */
  private readonly fresh = new Map<string, Set<string>>();
  private tokenCounter = 0;
  private readonly unlisten: () => void;

  constructor(private readonly options: SessionManagerOptions) {
    this.directory = options.directory;
    this.followerOptions = options.follower;
    this.maxInflight = options.maxInflightPerSession;
    this.commitIntervalMs = options.commitIntervalMs;
    this.unlisten = options.directory.onTopic((topic) => {
      for (const session of this.active.values()) {
        if (!session.coversTopic(topic)) continue;
        const since = Math.min(...[...session.filters.values()].map((filter) => filter.subscribedAtMs));
        session.follow(topic, false, since, true).catch((err: unknown) => log.warn({ err, topic }, 'follow failed'));
      }
    });
  }

  nextToken(): number {
    return ++this.tokenCounter;
  }

  /** The stored subscriptions of a session (empty when it has none). */
  stored(clientId: string): StoredSubscription[] {
    const entry = this.options.table.get(clientId);
    if (entry === undefined) return [];
    try {
      return (JSON.parse(entry.body.toString('utf8')) as SessionRecord).subscriptions;
    } catch (err) {
      log.warn({ err, clientId }, 'unreadable session record ignored');
      return [];
    }
  }

  /** Client ids of every stored session. */
  clientIds(): string[] {
    return [...this.options.table.values()].map((entry) => entry.key);
  }

  /**
   * Stores a SUBSCRIBE of a persistent client. A filter the connection does not already hold with
   * the same QoS is marked fresh: aedes activates it next, and it starts at the topics' end.
   */
  async storeSubscriptions(client: AedesClientView, subs: readonly { topic: string; qos: number }[]): Promise<void> {
    const now = Date.now();
    const byTopic = new Map(this.stored(client.id).map((sub) => [sub.topic, sub]));
    const fresh = this.fresh.get(client.id) ?? new Set<string>();
    this.fresh.set(client.id, fresh);
    for (const sub of subs) {
      const held = client.subscriptions[sub.topic];
      if (held !== undefined && held.qos === sub.qos) continue;
      byTopic.set(sub.topic, { topic: sub.topic, qos: sub.qos, subscribedAtMs: now });
      fresh.add(sub.topic);
    }
    await this.write(client.id, [...byTopic.values()]);
  }

  async removeSubscriptions(clientId: string, topics: readonly string[]): Promise<void> {
    const kept = this.stored(clientId).filter((sub) => !topics.includes(sub.topic));
    await this.write(clientId, kept);
  }

  async clean(clientId: string): Promise<void> {
    if (this.options.table.get(clientId) !== undefined) await this.write(clientId, []);
  }

  /** A persistent client's subscription became active (SUBSCRIBE or restore on reconnect). */
  async add(client: AedesClientView, filter: string, qos: number, func: DeliverFn): Promise<void> {
    let session = this.active.get(client.id);
    if (session === undefined) await this.stopping.get(client.id);
    session = this.active.get(client.id);
    if (session === undefined) {
      const consumer = new PullConsumer({
        group: sessionGroupOf(client.id),
        nameServers: this.options.nameServers,
        transport: this.options.transport,
      });
      session = new Session(client.id, consumer, this);
      this.active.set(client.id, session);
    }
    const freshSet = this.fresh.get(client.id);
    const fresh = freshSet?.delete(filter) === true;
    const stored = this.stored(client.id).find((sub) => sub.topic === filter);
    await session.addFilter({ filter, qos, func, subscribedAtMs: stored?.subscribedAtMs ?? Date.now() }, fresh);
  }

  /** A subscription's deliver function went away (UNSUBSCRIBE or disconnect). */
  remove(func: DeliverFn): boolean {
    for (const [clientId, session] of this.active) {
      if (!session.removeFunc(func)) continue;
      if (session.filters.size === 0) {
        this.active.delete(clientId);
        this.fresh.delete(clientId);
        const stopped = session.stop().finally(() => {
          if (this.stopping.get(clientId) === stopped) this.stopping.delete(clientId);
        });
        this.stopping.set(clientId, stopped);
      }
      return true;
    }
    return false;
  }

  bindMessageId(clientId: string, messageId: number, token: number): void {
    this.active.get(clientId)?.bindMessageId(messageId, token);
  }

  acked(clientId: string, messageId: number): void {
    this.active.get(clientId)?.ackMessageId(messageId);
  }

  async close(): Promise<void> {
    this.unlisten();
    const sessions = [...this.active.values()];
    this.active.clear();
    await Promise.all([...sessions.map((session) => session.stop()), ...this.stopping.values()]);
  }

  private async write(clientId: string, subscriptions: StoredSubscription[]): Promise<void> {
    const body =
      subscriptions.length === 0 ? Buffer.alloc(0) : Buffer.from(JSON.stringify({ clientId, subscriptions }), 'utf8');
    await this.options.table.put(clientId, body);
  }
}
