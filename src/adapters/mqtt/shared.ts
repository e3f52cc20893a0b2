/**
 * Shared subscriptions (`$share/<group>/<filter>`): the members of a share group split the
 * messages like a RocketMQ clustering group. Each (share group, filter) is one engine pop group,
 * `mqtt-share-<group escaped>-<hash of filter>`, read by a SimpleConsumer; every leased message goes
 * to one member in turn and is acknowledged (per message) once it has been written to that member;
 * a message no member can take is given back (nack) to be leased again. A new share group starts at
 * the end of its topics: its offsets are set before the first lease, so nothing published after
 * the SUBACK is missed and nothing older is replayed.
 */
import { createLogger } from '../../engine/common/logger.js';
import { javaStringHashCode } from '../../engine/common/java-hash.js';
import { PullConsumer, type ReceivedMessage, SimpleConsumer, type Transport } from '../../engine/client/index.js';
import { type AedesClientView, type DeliverFn, minQos } from './delivery-types.js';
import {
  escapeTopicLevel,
  matchesFilter,
  mqttNameOfMessage,
  mqttPayloadOf,
  qosOfMessage,
  type SharedFilter,
  toEngineFilter,
} from './mapping.js';
import type { TopicDirectory } from './topic-follower.js';

const log = createLogger('mqtt-shared');

export interface ShareManagerOptions {
  nameServers: readonly string[];
  transport: Transport;
  directory: TopicDirectory;
  /** Lease of a message handed to a member. */
  invisibleTimeMs: number;
  /** Long-polling wait per receive. */
  awaitDurationMs: number;
  /** Pause after a failed receive. */
  retryDelayMs: number;
}

interface Member {
  func: DeliverFn;
  qos: number;
  client: AedesClientView | undefined;
}

/** The engine group of a share group and filter. */
export function shareGroupOf(share: SharedFilter): string {
  const hash = (javaStringHashCode(share.filter) >>> 0).toString(16).padStart(8, '0');
  const group = escapeTopicLevel(share.group);
  return `mqtt-share-${group.slice(0, 80)}-${hash}`;
}

class ShareGroup {
  readonly members: Member[] = [];
  readonly createdAtMs = Date.now();
  private readonly consumer: SimpleConsumer;
  private readonly topics = new Set<string>();
  private turn = 0;
  private running = false;
  private loopDone: Promise<void> | undefined;
  private started: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly share: SharedFilter,
    private readonly options: ShareManagerOptions,
  ) {
    this.consumer = new SimpleConsumer({
      group: shareGroupOf(share),
      nameServers: options.nameServers,
      transport: options.transport,
      invisibleTimeMs: options.invisibleTimeMs,
      awaitDurationMs: options.awaitDurationMs,
      // Queues without an offset set below belong to topics that appeared after the subscription.
      consumeFromWhere: 'FIRST_OFFSET',
    });
  }

  start(): Promise<void> {
    this.started ??= this.doStart();
    return this.started;
  }

  /** Adds a topic the filter covers (a new topic found by a first-level wildcard). */
  async addTopic(topic: string, fromTimeMs: number | undefined): Promise<void> {
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    await this.position(topic, fromTimeMs);
    this.consumer.subscribe(topic, toEngineFilter(this.share.filter).tagExpression);
    if (this.running && this.loopDone === undefined) this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    await this.consumer.shutdown();
  }

  private async doStart(): Promise<void> {
    const engine = toEngineFilter(this.share.filter);
    const topics = engine.topic === undefined ? this.options.directory.known() : [engine.topic];
    for (const topic of topics) await this.addTopic(topic, undefined);
    await this.consumer.start();
    this.running = true;
    if (this.topics.size > 0) this.loopDone = this.loop();
  }

  /**
   * Sets the group's offsets where it has none yet: to the queue ends, or to the first message
   * stored at or after `fromTimeMs` (a topic discovered later by a wildcard).
   */
  private async position(topic: string, fromTimeMs: number | undefined): Promise<void> {
    const pull = new PullConsumer({
      group: shareGroupOf(this.share),
      nameServers: this.options.nameServers,
      transport: this.options.transport,
    });
    await pull.start();
    try {
      const queues = await pull.fetchQueues(topic).catch(() => []);
      for (const queue of queues) {
        if ((await pull.fetchOffset(queue)) >= 0) continue;
        const start =
          fromTimeMs === undefined ? await pull.maxOffset(queue) : await pull.searchOffset(queue, fromTimeMs);
        await pull.updateOffset(queue, start);
      }
    } finally {
      await pull.shutdown();
    }
  }

  private async loop(): Promise<void> {
    // Bounded by `running`; each receive waits at most awaitDurationMs.
    while (this.running) {
      let messages: ReceivedMessage[];
      try {
        messages = await this.consumer.receive(16);
      } catch (err) {
        if (!this.running) return;
        log.debug({ err, group: this.share.group }, 'receive failed; retrying');
        await new Promise<void>((resolve) => {
          this.retryTimer = setTimeout(resolve, this.options.retryDelayMs);
        });
        continue;
      }
      for (const message of messages) {
        if (!this.running) return;
        await this.handOut(message);
      }
    }
  }

  private async handOut(message: ReceivedMessage): Promise<void> {
    const name = mqttNameOfMessage(message.topic, message.tags, message.properties);
    const settle = (ok: boolean): void => {
      const done = ok ? this.consumer.ack(message) : this.consumer.nack(message, 1000);
      done.catch((err: unknown) => log.debug({ err }, 'ack/nack failed; the lease will expire'));
    };
    if (!matchesFilter(this.share.filter, name)) {
      settle(true);
      return;
    }
    const live = this.members.filter((member) => member.client === undefined || !member.client.closed);
    const member = live[this.turn++ % Math.max(live.length, 1)];
    if (member === undefined) {
      settle(false);
      return;
    }
    const qos = minQos(qosOfMessage(message.properties), member.qos);
    await new Promise<void>((resolve) => {
      member.func(
        {
          cmd: 'publish',
          topic: name,
          payload: mqttPayloadOf(message.body, message.properties),
          qos,
          retain: false,
          dup: false,
        },
        (err) => {
          settle(err === undefined || err === null);
          resolve();
        },
      );
    });
  }
}

/** All share groups with members on this server. */
export class ShareManager {
  private readonly groups = new Map<string, ShareGroup>();
  private readonly unlisten: () => void;

  constructor(private readonly options: ShareManagerOptions) {
    this.unlisten = options.directory.onTopic((topic) => {
      for (const group of this.groups.values()) {
        if (toEngineFilter(group.share.filter).topic !== undefined) continue;
        group
          .addTopic(topic, group.createdAtMs)
          .catch((err: unknown) => log.warn({ err, topic }, 'share group topic add failed'));
      }
    });
  }

  async add(share: SharedFilter, member: Member): Promise<void> {
    const key = shareGroupOf(share) + '\u0000' + share.filter;
    let group = this.groups.get(key);
    if (group === undefined) {
      group = new ShareGroup(share, this.options);
      this.groups.set(key, group);
    }
    group.members.push(member);
    await group.start();
  }

  remove(func: DeliverFn): boolean {
    for (const [key, group] of this.groups) {
      const index = group.members.findIndex((member) => member.func === func);
      if (index < 0) continue;
      group.members.splice(index, 1);
      if (group.members.length === 0) {
        this.groups.delete(key);
        void group.stop();
      }
      return true;
    }
    return false;
  }

  async close(): Promise<void> {
    this.unlisten();
    const groups = [...this.groups.values()];
    this.groups.clear();
    await Promise.all(groups.map((group) => group.stop()));
  }
}
