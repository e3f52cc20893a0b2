/**
 * The `mq` aedes routes publishes through, replaced by the engine. `emit` turns an MQTT publish
 * into an engine message (Producer, batched with the other publishes of the same turn by
 * publish-batcher.ts; the callback, hence PUBACK/PUBCOMP, waits until the broker stored it) and
 * never fans out before the engine has stored it: every delivery is of a stored message, exactly
 * once (a stored batch goes to the fanout at once when its topic's follower claims it, else the
 * follower reads it back). `on` / `removeListener` receive aedes' per-subscription deliver
 * functions and route them:
 * - `$share/...` filters to the share groups (shared.ts);
 * - subscriptions of persistent sessions to their session groups (sessions.ts);
 * - every other client subscription to the fanout: one TopicFollower per engine topic that some
 *   filter covers, started at the topic's end when the first such filter arrives (before SUBACK),
 *   each message matched against the filters and handed to the matching deliver functions (the
 *   subscriber connections corked meanwhile, so a pulled batch goes out in few writes);
 * - aedes' internal `$SYS/...` listeners to an in-memory list (those packets never leave the
 *   process; this server is not clustered through the mq).
 * Which client a deliver function belongs to is found by identity: aedes stores the function in
 * `client.subscriptions[filter]` just before calling `on`, and authorizeSubscribe (server.ts) tells
 * us which clients are subscribing to which filter.
 */
import { createLogger } from '../../engine/common/logger.js';
import { MessageProperty } from '../../engine/common/properties.js';
import {
  createUniqueMessageId,
  type MessageExt,
  type Producer,
  type PullConsumer,
  type SendResult,
} from '../../engine/client/index.js';
import { type AedesClientView, type DeliverFn, type DeliveryPacket, minQos } from './delivery-types.js';
import {
  type EngineAddress,
  engineBodyOf,
  escapeTopicLevel,
  matchesFilter,
  MqttProperty,
  mqttNameOf,
  mqttNameOfMessage,
  mqttPayloadOf,
  parseSharedFilter,
  publishTopicProblem,
  type Qos,
  qosOfMessage,
  toEngineAddress,
} from './mapping.js';
import { PublishBatcher } from './publish-batcher.js';
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

/** The part of a connection's stream the fanout uses to write a batch of deliveries at once. */
interface Corkable {
  cork(): void;
  uncork(): void;
}

interface FanoutRegistration {
  filter: string;
  /** The filter's levels, split once. */
  levels: readonly string[];
  /** Whether the filter starts with a wildcard (such filters never match names starting with `$`). */
  wildcardFirst: boolean;
  func: DeliverFn;
  qos: number;
  /** Undefined: the first level is a wildcard. */
  engineTopic: string | undefined;
  subscribedAtMs: number;
  /** The subscriber's connection stream (aedes' `client.conn`), when known. */
  conn: Corkable | undefined;
}

/** A publish as the fanout delivers it, kept with the engine message until its batch is stored. */
interface Echo {
  name: string;
  qos: Qos;
  payload: Buffer;
}

/**
 * Bytes of deliveries held back per corked connection before they are written: one write of a
 * pulled batch costs less than several, and past the stream's buffer size (16 KiB) aedes merely
 * waits for 'drain' before calling back a delivery, which the fanout does not wait for.
 */
const CORK_BYTES = 64 * 1024;
/** Names remembered by the per-name caches before they start over (bounded memory). */
const NAME_CACHE_LIMIT = 10_000;
/** Longer names are not cached (bounded memory): they are worked out each time. */
const NAME_CACHE_MAX_LENGTH = 256;

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

/** MQTT topic matching ([MQTT-4.7.1]) on pre-split levels; see matchesFilter in mapping.ts. */
function matchesLevels(registration: FanoutRegistration, name: string, nameLevels: readonly string[]): boolean {
  if (registration.wildcardFirst && name.startsWith('$')) return false;
  const f = registration.levels;
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= nameLevels.length) return false;
    if (level !== '+' && level !== nameLevels[i]) return false;
  }
  return f.length === nameLevels.length;
}

function uncork(conn: Corkable): void {
  conn.uncork();
}

/** Writes what a corked connection holds and keeps it corked. */
function writeHeld(conn: Corkable): void {
  conn.uncork();
  conn.cork();
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
  private readonly batcher: PublishBatcher<Echo>;
  /** Engine addresses of MQTT names published to (validated names only). */
  private readonly addresses = new Map<string, EngineAddress>();
  /** Kept `mqtt.topic` values of stored messages -> the engine topic they map to (undefined: invalid). */
  private readonly keptNames = new Map<string, string | undefined>();
  /** Connections corked for the deliveries of the current turn, with the bytes held back. */
  private readonly corked = new Map<Corkable, number>();
  private releaseScheduled = false;

  constructor(private readonly options: EngineMqOptions) {
    this.unlisten = options.directory.onTopic((topic) => this.topicAppeared(topic));
    this.batcher = new PublishBatcher<Echo>(options.producer, (topic, result, echoes) =>
      this.stored(topic, result, echoes),
    );
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
    packet.properties =
      packet.properties === undefined
        ? { [STORED_IN_ENGINE]: true }
        : { ...packet.properties, [STORED_IN_ENGINE]: true };
  }

  emit(packet: PublishPacket, done?: Callback): void {
    if (isStoredInEngine(packet)) {
      // Nothing to wait for; a tick (not an immediate) keeps aedes' next read of the socket close.
      if (done !== undefined) process.nextTick(done);
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

  /** Stores a publish in the engine, batched with the others of this turn (publish-batcher.ts). */
  private produce(packet: PublishPacket): Promise<void> {
    const name = packet.topic;
    const { topic, tag } = this.addressOf(name);
    const payload =
      typeof packet.payload === 'string' ? Buffer.from(packet.payload) : (packet.payload ?? Buffer.alloc(0));
    const { body, properties } = engineBodyOf(payload);
    const qos = minQos(packet.qos ?? 0, 2);
    properties[MqttProperty.Topic] = name;
    properties[MqttProperty.Qos] = qos === 1 ? '1' : qos === 2 ? '2' : '0';
    // What the Producer would add itself (tags, id, wait flag), set here: it copies the properties
    // and only adds what is missing, and adding keys to that copy costs microseconds per message.
    if (tag !== undefined && tag.length > 0) properties[MessageProperty.Tags] = tag;
    properties[MessageProperty.UniqueClientMessageId] = createUniqueMessageId();
    properties[MessageProperty.WaitStoreMsgOk] = 'true';
    return this.batcher.publish(name, { topic, body, properties }, { name, qos, payload });
  }

  /**
   * A batch is stored: its topic exists, and when the topic's fanout follower has handed on
   * everything before the batch, the fanout delivers it now instead of after reading it back (the
   * follower skips it), which saves the subscribers a round of the event loop per batch. Otherwise
   * (another producer's messages come first, the follower is starting) the follower delivers it.
   */
  private stored(topic: string, result: SendResult, echoes: readonly Echo[]): void {
    try {
      this.options.directory.announce(topic);
      const follower = this.followers.get(topic);
      if (follower === undefined || !follower.claim(result.messageQueue, result.queueOffset, echoes.length)) return;
      for (const echo of echoes) this.deliver(topic, echo.name, echo.qos, echo.payload);
    } catch (err) {
      log.warn({ err, topic }, 'delivering a stored batch failed');
    }
  }

  private addressOf(name: string): EngineAddress {
    if (name.length > NAME_CACHE_MAX_LENGTH) return toEngineAddress(name);
    let address = this.addresses.get(name);
    if (address === undefined) {
      address = toEngineAddress(name);
      if (this.addresses.size >= NAME_CACHE_LIMIT) this.addresses.clear();
      this.addresses.set(name, address);
    }
    return address;
  }

  /** mqttNameOfMessage (mapping.ts), with the check of a kept name done once per name. */
  private nameOfMessage(message: MessageExt): string {
    const kept = message.properties[MqttProperty.Topic];
    if (kept !== undefined && kept.length > NAME_CACHE_MAX_LENGTH) {
      return mqttNameOfMessage(message.topic, message.tags, message.properties);
    }
    if (kept !== undefined) {
      let keptTopic = this.keptNames.get(kept);
      if (keptTopic === undefined && !this.keptNames.has(kept)) {
        keptTopic = publishTopicProblem(kept) === undefined ? this.addressOf(kept).topic : undefined;
        if (this.keptNames.size >= NAME_CACHE_LIMIT) this.keptNames.clear();
        this.keptNames.set(kept, keptTopic);
      }
      if (keptTopic === message.topic) return kept;
    }
    return mqttNameOf(message.topic, message.tags);
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
    const levels = filter.split('/');
    const first = levels[0] as string;
    const wildcardFirst = first === '+' || first === '#';
    const engineTopic = wildcardFirst ? undefined : escapeTopicLevel(first);
    const conn = (owner as { conn?: Corkable } | undefined)?.conn;
    const registration: FanoutRegistration = {
      filter,
      levels,
      wildcardFirst,
      func,
      qos,
      engineTopic,
      subscribedAtMs: Date.now(),
      conn: conn !== undefined && typeof conn.cork === 'function' ? conn : undefined,
    };
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
    this.deliver(
      topic,
      this.nameOfMessage(message),
      qosOfMessage(message.properties),
      mqttPayloadOf(message.body, message.properties),
    );
  }

  /** Hands a message of engine topic `topic` to the fanout subscriptions its name matches. */
  private deliver(topic: string, name: string, publishedQos: Qos, payload: Buffer): void {
    const named = this.fanoutByTopic.get(topic) ?? EMPTY;
    const wildcards = this.fanoutByTopic.get(undefined) ?? EMPTY;
    if (named.size === 0 && wildcards.size === 0) return;
    const nameLevels = name.split('/');
    // aedes copies what it delivers (a Packet per client), so subscribers of one QoS share one.
    const packets: (DeliveryPacket | undefined)[] = [undefined, undefined, undefined];
    for (const group of [named, wildcards]) {
      for (const registration of group) {
        if (!matchesLevels(registration, name, nameLevels)) continue;
        const qos = minQos(publishedQos, registration.qos);
        let packet = packets[qos];
        if (packet === undefined) {
          packet = { cmd: 'publish', topic: name, payload, qos, retain: false, dup: false };
          packets[qos] = packet;
        }
        try {
          registration.func(packet, noop);
        } catch (err) {
          // One subscriber's failure must not cost the others their delivery.
          log.warn({ err, filter: registration.filter, topic: name }, 'delivery failed');
          continue;
        }
        this.holdWrites(registration.conn, payload.length + name.length + 8);
      }
    }
  }

  /**
   * Corks a subscriber's connection for the deliveries of this turn: aedes writes each one from its
   * own setImmediate, a system call per packet; corked, the packets of a pulled batch go out in one
   * write. The connection is corked once; immediates queued after the deliveries they cover (they
   * run in order) write what is held whenever CORK_BYTES are reached, and release the cork after the
   * last delivery of the turn.
   */
  private holdWrites(conn: Corkable | undefined, bytes: number): void {
    if (conn === undefined) return;
    let held = this.corked.get(conn);
    if (held === undefined) {
      conn.cork();
      held = 0;
      if (!this.releaseScheduled) {
        this.releaseScheduled = true;
        process.nextTick(this.releaseCorks);
      }
    }
    held += bytes;
    if (held >= CORK_BYTES) {
      // The delivery just handed over queued its immediate before this one: it is covered.
      setImmediate(writeHeld, conn);
      held = 0;
    }
    this.corked.set(conn, held);
  }

  /** Runs once this turn's deliveries are queued: every cork is released after them. */
  private readonly releaseCorks = (): void => {
    this.releaseScheduled = false;
    for (const conn of this.corked.keys()) setImmediate(uncork, conn);
    this.corked.clear();
  };
}

function noop(): void {}
