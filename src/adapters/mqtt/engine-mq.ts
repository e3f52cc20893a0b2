/**
 * The `mq` aedes routes publishes through, replaced by the engine. `emit` turns an MQTT publish
 * into an engine message (Producer; the callback, hence PUBACK/PUBCOMP, waits until the broker
 * stored it) and never fans out in memory, so every delivery comes back from the engine exactly
 * once. `on` / `removeListener` receive aedes' per-subscription deliver functions and route them:
 * - `$share/...` filters to the share groups (shared.ts);
 * - subscriptions of persistent sessions to their session groups (sessions.ts);
 * - every other client subscription to the fanout: one TopicFollower per engine topic that some
 *   filter covers, started at the topic's end when the first such filter arrives (before SUBACK),
 *   each message matched against the filters and handed to the matching deliver functions;
 * - aedes' internal `$SYS/...` listeners to an in-memory list (those packets never leave the
 *   process; this server is not clustered through the mq).
 * Which client a deliver function belongs to is found by identity: aedes stores the function in
 * `client.subscriptions[filter]` just before calling `on`, and authorizeSubscribe (server.ts) tells
 * us which clients are subscribing to which filter.
 */
import { createLogger } from '../../engine/common/logger.js';
import { javaStringHashCode } from '../../engine/common/java-hash.js';
import type { MessageExt, MessageQueue, Producer, PullConsumer } from '../../engine/client/index.js';
import { type AedesClientView, type DeliverFn, type DeliveryPacket, minQos } from './delivery-types.js';
import {
  engineBodyOf,
  escapeTopicLevel,
  matchesFilter,
  MqttProperty,
  mqttNameOfMessage,
  mqttPayloadOf,
  parseSharedFilter,
  qosOfMessage,
  toEngineAddress,
} from './mapping.js';
import type { SessionManager } from './sessions.js';
import type { ShareManager } from './shared.js';
import { type FollowerOptions, type TopicDirectory, TopicFollower } from './topic-follower.js';

const log = createLogger('mqtt-mq');

type Callback = (err?: Error | null) => void;

interface PublishPacket {
  topic: string;
  payload?: Buffer | string;
  qos?: number;
  retain?: boolean;
  properties?: Record<string | symbol, unknown>;
}

/**
 * Marks a publish already stored in the engine (QoS 1, stored before aedes writes PUBACK). aedes
 * copies `properties` into the packets it passes on, and MQTT 3.1.1 never writes them on the wire.
 */
const STORED_IN_ENGINE = Symbol('rocketbridge.storedInEngine');

/** Whether storeBeforeAck already stored this publish (and its retained copy). */
export function isStoredInEngine(packet: { properties?: unknown }): boolean {
  const properties = packet.properties as Record<symbol, unknown> | undefined;
  return properties !== undefined && properties !== null && properties[STORED_IN_ENGINE] === true;
}

interface FanoutRegistration {
  filter: string;
  func: DeliverFn;
  qos: number;
  /** Undefined: the first level is a wildcard. */
  engineTopic: string | undefined;
  subscribedAtMs: number;
}

export interface EngineMqOptions {
  producer: Producer;
  /** Reads the fanout topics; its group never commits offsets. */
  fanoutConsumer: PullConsumer;
  directory: TopicDirectory;
  sessions: SessionManager;
  shares: ShareManager;
  follower: FollowerOptions;
}

const EMPTY: ReadonlySet<FanoutRegistration> = new Set();

/** Picks the queue of an MQTT topic name, so one name's messages stay in order. */
function queueForName(name: string): (queues: readonly MessageQueue[]) => MessageQueue {
  return (queues) => {
    const sorted = [...queues].sort((a, b) =>
      a.brokerName === b.brokerName ? a.queueId - b.queueId : a.brokerName < b.brokerName ? -1 : 1,
    );
    return sorted[(javaStringHashCode(name) >>> 0) % sorted.length] as MessageQueue;
  };
}

/** aedes' mq, on the engine. */
export class EngineMq {
  private readonly local: { filter: string; func: DeliverFn }[] = [];
  private readonly fanout = new Map<DeliverFn, FanoutRegistration>();
  /** Fanout registrations by engine topic; first-level wildcards under WILDCARD_KEY. */
  private readonly fanoutByTopic = new Map<string | undefined, Set<FanoutRegistration>>();
  private readonly followers = new Map<string, TopicFollower>();
  private readonly starting = new Map<string, Promise<void>>();
  /** Clients that asked to subscribe to a filter and whose deliver function has not arrived yet. */
  private readonly subscribing = new Map<string, Set<AedesClientView>>();
  private readonly unlisten: () => void;
  private closed = false;

  constructor(private readonly options: EngineMqOptions) {
    this.unlisten = options.directory.onTopic((topic) => this.topicAppeared(topic));
  }

  /** Called from authorizeSubscribe: `client` is about to subscribe `filter`. */
  expectSubscription(client: AedesClientView, filter: string, qos: number): void {
    // aedes calls `on` only for a new filter or a changed QoS.
    if (client.subscriptions[filter]?.qos === qos) return;
    let clients = this.subscribing.get(filter);
    if (clients === undefined) {
      clients = new Set();
      this.subscribing.set(filter, clients);
    }
    // Clients that closed before their deliver function arrived are dropped here.
    for (const other of clients) if (other.closed) clients.delete(other);
    clients.add(client);
  }

  on(filter: string, func: DeliverFn, done?: Callback): void {
    this.add(filter, func).then(
      () => done?.(),
      (err: unknown) => {
        log.warn({ err, filter }, 'subscription could not start');
        done?.(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  removeListener(_filter: string, func: DeliverFn, done?: Callback): void {
    const index = this.local.findIndex((entry) => entry.func === func);
    if (index >= 0) this.local.splice(index, 1);
    else if (this.removeFanout(func)) this.releaseFollowers();
    else if (!this.options.sessions.remove(func)) this.options.shares.remove(func);
    if (done !== undefined) setImmediate(done);
  }

  /**
   * Stores a QoS 1 publish (and its retained copy) before aedes acknowledges it: aedes writes
   * PUBACK before calling publish, so the engine write happens here, from authorizePublish, and the
   * packet is marked so that emit and storeRetained skip it [MQTT-4.3.2-2].
   */
  async storeBeforeAck(packet: PublishPacket, storeRetained: (packet: PublishPacket) => Promise<void>): Promise<void> {
    if (packet.retain === true) await storeRetained(packet);
    await this.produce(packet);
    packet.properties = { ...(packet.properties ?? {}), [STORED_IN_ENGINE]: true };
  }

  emit(packet: PublishPacket, done?: Callback): void {
    if (isStoredInEngine(packet)) {
      if (done !== undefined) setImmediate(done);
      return;
    }
    if (packet.topic.startsWith('$')) {
      this.emitLocal(packet);
      if (done !== undefined) setImmediate(done);
      return;
    }
    this.produce(packet).then(
      () => done?.(),
      (err: unknown) => {
        log.warn({ err, topic: packet.topic }, 'publish could not be stored in the engine');
        done?.(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  close(done?: () => void): void {
    this.closed = true;
    this.unlisten();
    for (const follower of this.followers.values()) follower.stop();
    this.followers.clear();
    this.fanout.clear();
    this.fanoutByTopic.clear();
    if (done !== undefined) setImmediate(done);
  }

  /** Number of fanout (clean-session) subscriptions, for the admin view. */
  get fanoutSubscriptionCount(): number {
    return this.fanout.size;
  }

  private async produce(packet: PublishPacket): Promise<void> {
    const name = packet.topic;
    const { topic, tag } = toEngineAddress(name);
    const payload =
      typeof packet.payload === 'string' ? Buffer.from(packet.payload) : (packet.payload ?? Buffer.alloc(0));
    const { body, properties } = engineBodyOf(payload);
    const message: Parameters<Producer['send']>[0] = {
      topic,
      body,
      properties: { ...properties, [MqttProperty.Topic]: name, [MqttProperty.Qos]: String(packet.qos ?? 0) },
    };
    if (tag !== undefined && tag.length > 0) message.tags = tag;
    await this.options.producer.send(message, { selector: queueForName(name) });
    this.options.directory.announce(topic);
  }

  private emitLocal(packet: PublishPacket): void {
    const delivery: DeliveryPacket = {
      cmd: 'publish',
      topic: packet.topic,
      payload: typeof packet.payload === 'string' ? Buffer.from(packet.payload) : (packet.payload ?? Buffer.alloc(0)),
      qos: minQos(packet.qos ?? 0, 2),
      retain: packet.retain ?? false,
      dup: false,
    };
    for (const entry of [...this.local]) {
      if (matchesFilter(entry.filter, packet.topic)) entry.func(delivery, () => {});
    }
  }

  private ownerOf(filter: string, func: DeliverFn): AedesClientView | undefined {
    const clients = this.subscribing.get(filter);
    if (clients === undefined) return undefined;
    for (const client of clients) {
      if (client.subscriptions[filter]?.func === func) {
        clients.delete(client);
        if (clients.size === 0) this.subscribing.delete(filter);
        return client;
      }
    }
    return undefined;
  }

  private async add(filter: string, func: DeliverFn): Promise<void> {
    const owner = this.ownerOf(filter, func);
    const qos = owner?.subscriptions[filter]?.qos ?? 2;
    const share = filter.startsWith('$share/') ? parseSharedFilter(filter) : undefined;
    if (share !== undefined) {
      await this.options.shares.add(share, { func, qos, client: owner });
      return;
    }
    if (filter.startsWith('$')) {
      this.local.push({ filter, func });
      return;
    }
    if (owner !== undefined && !owner.clean) {
      await this.options.sessions.add(owner, filter, qos, func);
      return;
    }
    const first = filter.split('/')[0] as string;
    const engineTopic = first === '+' || first === '#' ? undefined : escapeTopicLevel(first);
    const registration: FanoutRegistration = { filter, func, qos, engineTopic, subscribedAtMs: Date.now() };
    this.fanout.set(func, registration);
    let group = this.fanoutByTopic.get(engineTopic);
    if (group === undefined) {
      group = new Set();
      this.fanoutByTopic.set(engineTopic, group);
    }
    group.add(registration);
    const topics = engineTopic === undefined ? this.options.directory.known() : [engineTopic];
    await Promise.all(topics.map((topic) => this.ensureFollower(topic, { kind: 'end' })));
  }

  private covers(registration: FanoutRegistration, topic: string): boolean {
    return registration.engineTopic === undefined || registration.engineTopic === topic;
  }

  private ensureFollower(
    topic: string,
    position: Parameters<TopicFollower['start']>[0],
    waitForRoute = false,
  ): Promise<void> {
    if (this.closed || this.followers.has(topic)) return Promise.resolve();
    const pending = this.starting.get(topic);
    if (pending !== undefined) return pending;
    const follower = new TopicFollower(
      this.options.fanoutConsumer,
      topic,
      (message) => this.dispatch(topic, message),
      this.options.follower,
    );
    const start = (waitForRoute ? follower.startWhenRouted(position) : follower.start(position))
      .then((started) => {
        if (started && !this.closed) this.followers.set(topic, follower);
        else follower.stop();
      })
      .finally(() => this.starting.delete(topic));
    this.starting.set(topic, start);
    return start;
  }

  /** A topic came into existence (or into view): follow it from when its first covering filter arrived. */
  private topicAppeared(topic: string): void {
    let since: number | undefined;
    for (const registration of this.fanout.values()) {
      if (!this.covers(registration, topic)) continue;
      since = since === undefined ? registration.subscribedAtMs : Math.min(since, registration.subscribedAtMs);
    }
    if (since === undefined || this.followers.has(topic)) return;
    this.ensureFollower(topic, { kind: 'time', timestampMs: since }, true).catch((err: unknown) =>
      log.warn({ err, topic }, 'could not follow new topic'),
    );
  }

  /** Stops followers no registration covers any more. */
  private releaseFollowers(): void {
    if (this.fanoutByTopic.has(undefined)) return;
    for (const [topic, follower] of this.followers) {
      if (this.fanoutByTopic.has(topic)) continue;
      follower.stop();
      this.followers.delete(topic);
    }
  }

  private removeFanout(func: DeliverFn): boolean {
    const registration = this.fanout.get(func);
    if (registration === undefined) return false;
    this.fanout.delete(func);
    const group = this.fanoutByTopic.get(registration.engineTopic);
    group?.delete(registration);
    if (group?.size === 0) this.fanoutByTopic.delete(registration.engineTopic);
    return true;
  }

  private dispatch(topic: string, message: MessageExt): void {
    const name = mqttNameOfMessage(message.topic, message.tags, message.properties);
    const publishedQos = qosOfMessage(message.properties);
    const named = this.fanoutByTopic.get(topic) ?? EMPTY;
    const wildcards = this.fanoutByTopic.get(undefined) ?? EMPTY;
    for (const registration of [...named, ...wildcards]) {
      if (!matchesFilter(registration.filter, name)) continue;
      registration.func(
        {
          cmd: 'publish',
          topic: name,
          payload: mqttPayloadOf(message.body, message.properties),
          qos: minQos(publishedQos, registration.qos),
          retain: false,
          dup: false,
        },
        () => {},
      );
    }
  }
}
