/**
 * The virtual host "/": the state every connection shares. Owns the topology (with the protocol's
 * checks: passive declares, equivalence, access to `amq.*`, exclusive ownership), the queue
 * runtimes (a QueueBackend each, the consumers, round-robin dispatch within prefetch limits),
 * publishing through the engine Producer, and durable-definition persistence via DefinitionsLog.
 * Channels call in here; errors are thrown as AmqpProtocolError with the spec's reply code.
 */
import { randomBytes } from 'node:crypto';
import {
  createUniqueMessageId,
  type Message,
  type MessageExt,
  type MessageQueue,
  Producer,
  RemoteTransport,
  type Transport,
} from '../../engine/client/index.js';
import { javaStringHashCode } from '../../engine/common/java-hash.js';
import { ChurnMap, ChurnSet } from '../../engine/common/churn-map.js';
import { createLogger } from '../../engine/common/logger.js';
import { MessageProperty } from '../../engine/common/properties.js';
import type { BasicProperties } from './content-header.js';
import {
  type BindingDef,
  comparable,
  Definitions,
  EXCHANGE_TYPES,
  type ExchangeDef,
  type ExchangeType,
  isReservedExchangeName,
  type QueueDef,
} from './definitions.js';
import { applyEvent, type DefinitionEvent, DefinitionsLog } from './definitions-log.js';
import { EXCHANGE_EQUIVALENCE_ARGUMENTS, inequivalence, QUEUE_EQUIVALENCE_ARGUMENTS } from './equivalence.js';
import { AmqpProtocolError } from './errors.js';
import { type FieldTable, FieldTyped, type FieldValue } from './field-table.js';
import { FlowControl } from './flow-control.js';
import {
  AmqpProperty,
  type AmqpContent,
  encodeName,
  exchangeOfTopic,
  groupOfQueue,
  headersOf,
  toAmqpContent,
  toEngineMessage,
  topicOfExchange,
  DEFAULT_EXCHANGE_TOPIC,
} from './mapping.js';
import { PopQueueBackend } from './pop-queue-backend.js';
import { PullQueueBackend, type QueueBackend } from './queue-backend.js';
import {
  type DeadLetterReason,
  NUMERIC_QUEUE_ARGUMENTS,
  numberArgument,
  OVERFLOW_MODES,
  policyOf,
  QueueRuntime,
  readyLimitOf,
} from './queue-runtime.js';

export type { Consumer, ConsumerChannel } from './queue-runtime.js';
export { QueueRuntime } from './queue-runtime.js';
import { ReplyCode } from './reply-codes.js';

const log = createLogger('amqp-vhost');

export const VHOST = '/';
const TOPIC_MAX_CHARS = 127;

/** Publishes of one turn waiting to go to the broker together. */
interface SendBatch {
  messages: Message[];
  bytes: number;
  waiters: { resolve: () => void; reject: (err: unknown) => void }[];
}

const SEND_BATCH_MAX_MESSAGES = 256;
const SEND_BATCH_MAX_BYTES = 32 * 1024;
/** An unchanged topology is snapshotted again after this many snapshot intervals. */
const SNAPSHOT_MAX_AGE_INTERVALS = 6;

/** A channel with a direct reply-to consumer. */
export interface ReplyChannel {
  deliverReply(routingKey: string, properties: BasicProperties, body: Buffer): void;
}

/** Creates the backend of a queue; the default uses the PullConsumer. */
export type QueueBackendFactory = (options: {
  queue: string;
  group: string;
  accepts: (message: MessageExt) => boolean;
  /** Messages to fetch ahead, when the queue's arguments need more than the default (x-max-length). */
  readyLimit?: number;
}) => QueueBackend;

/**
 * Where a publish goes after x-overflow reject-publish had its say: the queues that take it, those
 * that refused it (the publisher gets basic.nack), and the unique id the admitted ones count it by.
 */
export interface Admission {
  readonly id: string;
  readonly accepted: Set<string>;
  readonly rejected: readonly QueueRuntime[];
}

export interface VhostOptions {
  nameServers: readonly string[];
  transport?: Transport;
  /**
   * Which client primitive backs queues: 'pop' (SimpleConsumer, per-message leases in the broker;
   * the default) or 'pull' (PullConsumer with offsets; one gateway process per queue).
   */
  queueBackend?: 'pop' | 'pull';
  /** Overrides how queues reach the engine entirely. */
  backendFactory?: QueueBackendFactory;
  /** Producer group for AMQP publishes. */
  producerGroup?: string;
  sendTimeoutMs?: number;
  /** Unconfirmed publishes (all connections) that block publishers with connection.blocked (default 20,000). */
  backlogHighWaterMessages?: number;
  /** Their bytes (default 256 MiB). */
  backlogHighWaterBytes?: number;
  /** Process RSS that blocks publishers; unset = never. */
  memoryHighWaterBytes?: number;
  /** How often a store or memory alarm is re-checked (default 1000 ms). */
  flowCheckIntervalMs?: number;
  /**
   * How often the durable definitions are snapshotted into their log when they changed (default 10
   * minutes); unchanged ones every 6 intervals. Far below CommitLog retention (72 h), which deletes
   * whatever the snapshot replaces.
   */
  definitionsSnapshotIntervalMs?: number;
}

/** The queues (by name) a stored message was refused by (x-overflow reject-publish), from its property. */
function rejectedByOf(message: MessageExt): ReadonlySet<string> | undefined {
  const list = message.properties[AmqpProperty.RejectedBy];
  return list === undefined || list.length === 0 ? undefined : new Set(list.split(','));
}

/** A queue name the engine reads as one exact tag (no `||` list, no spaces at the ends). */
function isPlainTag(name: string): boolean {
  return name.length > 0 && !name.includes('|') && name.trim() === name && name !== '*';
}

function fail(code: ReplyCode, text: string, classId: number, methodId: number): AmqpProtocolError {
  return new AmqpProtocolError(code, text, { classId, methodId });
}

/** The shared state of all AMQP connections. */
export class Vhost {
  readonly definitions = new Definitions();
  private readonly queues = new Map<string, QueueRuntime>();
  private readonly producer: Producer;
  private readonly transport: Transport;
  private readonly ownsTransport: boolean;
  private readonly log: DefinitionsLog;
  /** Snapshots of the durable definitions in their log (see snapshotDefinitions). */
  private readonly snapshotIntervalMs: number;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private snapshotting: Promise<void> | undefined;
  private lastSnapshotMs = Date.now();
  private changesSinceSnapshot = 0;
  private persistsInFlight = 0;
  private readonly backendFactory: QueueBackendFactory;
  private readonly inFlight = new ChurnSet<Promise<unknown>>();
  private readonly replyChannels = new Map<string, ReplyChannel>();
  /** ChurnSet/ChurnMap: an entry per publish or batch comes and goes (see churn-map.ts). */
  private readonly sendBatches = new ChurnMap<string, SendBatch>();
  /** Publisher flow control (connection.blocked); connections subscribe to it. */
  readonly flow: FlowControl;

  constructor(options: VhostOptions) {
    this.ownsTransport = options.transport === undefined;
    this.transport = options.transport ?? new RemoteTransport();
    this.producer = new Producer({
      group: options.producerGroup ?? 'AMQP_GATEWAY_PRODUCER',
      nameServers: options.nameServers,
      transport: this.transport,
      sendTimeoutMs: options.sendTimeoutMs ?? 3000,
    });
    const flowOptions: ConstructorParameters<typeof FlowControl>[0] = {
      nameServers: options.nameServers,
      transport: this.transport,
    };
    if (options.backlogHighWaterMessages !== undefined)
      flowOptions.backlogHighWaterMessages = options.backlogHighWaterMessages;
    if (options.backlogHighWaterBytes !== undefined) flowOptions.backlogHighWaterBytes = options.backlogHighWaterBytes;
    if (options.memoryHighWaterBytes !== undefined) flowOptions.memoryHighWaterBytes = options.memoryHighWaterBytes;
    if (options.flowCheckIntervalMs !== undefined) flowOptions.checkIntervalMs = options.flowCheckIntervalMs;
    this.flow = new FlowControl(flowOptions);
    this.snapshotIntervalMs = options.definitionsSnapshotIntervalMs ?? 10 * 60_000;
    this.log = new DefinitionsLog({
      nameServers: options.nameServers,
      transport: this.transport,
      producer: this.producer,
    });
    const kind = options.queueBackend ?? 'pop';
    this.backendFactory =
      options.backendFactory ??
      ((each) =>
        kind === 'pull'
          ? new PullQueueBackend({
              group: each.group,
              nameServers: options.nameServers,
              transport: this.transport,
              accepts: each.accepts,
              ...(each.readyLimit === undefined ? {} : { readyLimit: each.readyLimit }),
            })
          : new PopQueueBackend({
              group: each.group,
              nameServers: options.nameServers,
              transport: this.transport,
              accepts: each.accepts,
              // The default exchange's topic is shared by every queue: let the broker pick ours by tag.
              expressionFor: (topic) => (topic === DEFAULT_EXCHANGE_TOPIC && isPlainTag(each.queue) ? each.queue : '*'),
              ...(each.readyLimit === undefined ? {} : { readyLimit: each.readyLimit }),
            }));
  }

  /** Replays durable definitions and starts their queues. */
  async start(): Promise<void> {
    await this.producer.start();
    this.flow.start();
    const { events, eventsAfterSnapshot } = await this.log.readAll();
    for (const event of events) applyEvent(this.definitions, event);
    log.info({ events: events.length, queues: this.definitions.queues.size }, 'AMQP definitions replayed');
    for (const def of this.definitions.queues.values()) {
      await this.startQueue(def, undefined, false);
    }
    this.log.follow((event) => this.applyRemote(event));
    if (eventsAfterSnapshot > 0) await this.snapshotDefinitions();
    this.snapshotTimer = setInterval(() => {
      const stale = Date.now() - this.lastSnapshotMs >= SNAPSHOT_MAX_AGE_INTERVALS * this.snapshotIntervalMs;
      if (this.changesSinceSnapshot > 0 || stale) void this.snapshotDefinitions();
    }, this.snapshotIntervalMs);
    this.snapshotTimer.unref();
  }

  /**
   * Appends the durable topology as one snapshot event (see definitions-log.ts), so a replay never
   * needs events that CommitLog retention may have deleted. Skipped while a durable change is being
   * stored (its event would precede a snapshot that does not show it yet); the next tick retries.
   */
  private async snapshotDefinitions(): Promise<void> {
    if (this.persistsInFlight > 0 || this.snapshotting !== undefined) return;
    const changes = this.changesSinceSnapshot;
    const snapshot: DefinitionEvent = {
      op: 'snapshot',
      exchanges: [...this.definitions.exchanges.values()].filter(
        (def) => def.durable && !isReservedExchangeName(def.name),
      ),
      queues: [...this.definitions.queues.values()].filter((def) => def.durable && !def.exclusive),
      bindings: this.definitions.allBindings().filter((binding) => this.bindingIsDurable(binding)),
    };
    this.snapshotting = this.log.append(snapshot).then(
      () => {
        this.changesSinceSnapshot -= changes;
        this.lastSnapshotMs = Date.now();
      },
      (err: unknown) => log.warn({ err }, 'could not store a snapshot of the durable definitions'),
    );
    try {
      await this.snapshotting;
    } finally {
      this.snapshotting = undefined;
    }
  }

  /** A durable change another gateway made: apply it here without storing it again. */
  private async applyRemote(event: DefinitionEvent): Promise<void> {
    this.changesSinceSnapshot++;
    switch (event.op) {
      case 'queue.declare':
        if (this.queues.has(event.queue.name)) return;
        applyEvent(this.definitions, event);
        await this.startQueue(event.queue, undefined, false);
        return;
      case 'queue.delete': {
        const queue = this.queues.get(event.name);
        if (queue !== undefined) await this.deleteQueueRuntime(queue, 'deleted by another gateway', false);
        return;
      }
      default:
        applyEvent(this.definitions, event);
        await this.refreshSubscriptions(false);
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.snapshotTimer);
    await this.snapshotting;
    const queues = [...this.queues.values()];
    this.queues.clear();
    for (const queue of queues) queue.stop();
    await Promise.all(queues.map((queue) => queue.backend.stop()));
    await this.flow.stop();
    await this.log.close();
    await this.producer.shutdown();
    if (this.ownsTransport) await this.transport.close();
  }

  queue(name: string): QueueRuntime | undefined {
    return this.queues.get(name);
  }

  // --- exchanges --------------------------------------------------------------------------

  async declareExchange(
    m: {
      exchange: string;
      type: string;
      passive: boolean;
      durable: boolean;
      autoDelete: boolean;
      internal: boolean;
      arguments: FieldTable;
    },
    classId: number,
    methodId: number,
  ): Promise<void> {
    const existing = this.definitions.exchanges.get(m.exchange);
    if (m.passive) {
      if (existing === undefined) {
        throw fail(ReplyCode.NotFound, `no exchange '${m.exchange}' in vhost '${VHOST}'`, classId, methodId);
      }
      return;
    }
    if (m.exchange === '' || (m.exchange.startsWith('amq.') && existing === undefined)) {
      throw fail(
        ReplyCode.AccessRefused,
        `exchange name '${m.exchange}' contains reserved prefix 'amq.*'`,
        classId,
        methodId,
      );
    }
    if (!EXCHANGE_TYPES.has(m.type)) {
      throw new AmqpProtocolError(ReplyCode.CommandInvalid, `unknown exchange type '${m.type}'`, {
        classId,
        methodId,
        scope: 'connection',
      });
    }
    if (existing !== undefined) {
      const difference = inequivalence(
        'exchange',
        m.exchange,
        VHOST,
        [
          ['type', existing.type, m.type],
          ['durable', existing.durable, m.durable],
          ['auto_delete', existing.autoDelete, m.autoDelete],
          ['internal', existing.internal, m.internal],
        ],
        EXCHANGE_EQUIVALENCE_ARGUMENTS,
        existing.arguments,
        m.arguments,
      );
      if (difference !== undefined) throw fail(ReplyCode.PreconditionFailed, difference, classId, methodId);
      return;
    }
    if (topicOfExchange(m.exchange).length > TOPIC_MAX_CHARS) {
      throw fail(
        ReplyCode.PreconditionFailed,
        `exchange name '${m.exchange}' is too long for a topic`,
        classId,
        methodId,
      );
    }
    const def: ExchangeDef = {
      name: m.exchange,
      type: m.type as ExchangeType,
      durable: m.durable,
      autoDelete: m.autoDelete,
      internal: m.internal,
      arguments: m.arguments,
    };
    if (def.durable) await this.persist({ op: 'exchange.declare', exchange: def });
    this.definitions.exchanges.set(def.name, def);
  }

  async deleteExchange(name: string, ifUnused: boolean, classId: number, methodId: number): Promise<void> {
    const def = this.definitions.exchanges.get(name);
    if (isReservedExchangeName(name)) {
      throw fail(ReplyCode.AccessRefused, `cannot delete exchange '${name}'`, classId, methodId);
    }
    if (def === undefined) return; // RabbitMQ 3.x: deleting a missing exchange succeeds.
    if (ifUnused && this.definitions.bindingsFrom(name).length > 0) {
      throw fail(ReplyCode.PreconditionFailed, `exchange '${name}' in vhost '${VHOST}' in use`, classId, methodId);
    }
    if (def.durable) await this.persist({ op: 'exchange.delete', name });
    this.definitions.deleteExchange(name);
    await this.refreshSubscriptions();
  }

  // --- queues -----------------------------------------------------------------------------

  async declareQueue(
    m: {
      queue: string;
      passive: boolean;
      durable: boolean;
      exclusive: boolean;
      autoDelete: boolean;
      arguments: FieldTable;
    },
    connectionId: number,
    classId: number,
    methodId: number,
  ): Promise<{ queue: string; messageCount: number; consumerCount: number }> {
    let name = m.queue;
    if (name === 'amq.rabbitmq.reply-to' && m.passive) return { queue: name, messageCount: 0, consumerCount: 0 };
    const existing = name === '' ? undefined : this.queues.get(name);
    if (existing !== undefined) {
      this.checkExclusive(existing, connectionId, classId, methodId);
      if (!m.passive) {
        this.checkQueueArguments(name, m.arguments, classId, methodId);
        const difference = inequivalence(
          'queue',
          name,
          VHOST,
          [
            ['durable', existing.def.durable, m.durable],
            ['exclusive', existing.def.exclusive, m.exclusive],
            ['auto_delete', existing.def.autoDelete, m.autoDelete],
          ],
          QUEUE_EQUIVALENCE_ARGUMENTS,
          existing.def.arguments,
          m.arguments,
        );
        if (difference !== undefined) throw fail(ReplyCode.PreconditionFailed, difference, classId, methodId);
      }
      return {
        queue: name,
        messageCount: await existing.backend.messageCount(),
        consumerCount: existing.consumers.length,
      };
    }
    if (m.passive) throw fail(ReplyCode.NotFound, `no queue '${name}' in vhost '${VHOST}'`, classId, methodId);
    if (name === '') name = `amq.gen-${randomBytes(16).toString('base64url')}`;
    else if (name.startsWith('amq.')) {
      throw fail(ReplyCode.AccessRefused, `queue name '${name}' contains reserved prefix 'amq.*'`, classId, methodId);
    }
    if (groupOfQueue(name).length > 255) {
      throw fail(ReplyCode.PreconditionFailed, `queue name '${name}' is too long`, classId, methodId);
    }
    this.checkQueueArguments(name, m.arguments, classId, methodId);
    const def: QueueDef = {
      name,
      durable: m.durable,
      exclusive: m.exclusive,
      autoDelete: m.autoDelete,
      arguments: m.arguments,
    };
    if (def.durable && !def.exclusive) await this.persist({ op: 'queue.declare', queue: def });
    this.definitions.queues.set(name, def);
    await this.startQueue(def, m.exclusive ? connectionId : undefined, true);
    return { queue: name, messageCount: 0, consumerCount: 0 };
  }

  /** 406 for queue arguments RabbitMQ would refuse (wrong type, unknown x-overflow). */
  private checkQueueArguments(name: string, args: FieldTable, classId: number, methodId: number): void {
    for (const argument of NUMERIC_QUEUE_ARGUMENTS) {
      if (argument in args && numberArgument(args[argument]) === undefined) {
        throw fail(
          ReplyCode.PreconditionFailed,
          `invalid arg '${argument}' for queue '${name}' in vhost '${VHOST}': expected a non-negative integer`,
          classId,
          methodId,
        );
      }
    }
    const overflow = args['x-overflow'];
    if (overflow !== undefined && !(typeof overflow === 'string' && OVERFLOW_MODES.has(overflow))) {
      throw fail(
        ReplyCode.PreconditionFailed,
        `invalid arg 'x-overflow' for queue '${name}' in vhost '${VHOST}': {unknown_overflow_type,<<"${String(overflow)}">>}`,
        classId,
        methodId,
      );
    }
  }

  private async startQueue(def: QueueDef, owner: number | undefined, fresh: boolean): Promise<QueueRuntime> {
    // The backend exists before its runtime; the accept filter reaches the runtime through this.
    const holder: { runtime?: QueueRuntime } = {};
    const encodedName = encodeName(def.name);
    const readyLimit = readyLimitOf(policyOf(def));
    const backend = this.backendFactory({
      queue: def.name,
      group: groupOfQueue(def.name),
      accepts: (message) => {
        if (rejectedByOf(message)?.has(encodedName) === true) return false;
        const exchange = exchangeOfTopic(message.topic);
        if (!this.definitions.routesTo(exchange, message.tags ?? '', () => headersOf(message), def.name)) return false;
        // Fetched: it is counted as ready from now on, no longer as admitted.
        holder.runtime?.forget(message.msgId); // the producer's UNIQ_KEY
        return true;
      },
      ...(readyLimit === undefined ? {} : { readyLimit }),
    });
    const runtime = new QueueRuntime(def, backend, owner, {
      deadLetter: (queue, message, reason) => this.deadLetter(queue, message, reason),
      expire: (queue, why) => {
        void this.deleteQueueRuntime(queue, why).catch((err: unknown) =>
          log.warn({ err, queue: queue.name, why }, 'queue removal failed'),
        );
      },
    });
    holder.runtime = runtime;
    this.queues.set(def.name, runtime);
    await backend.start();
    const topics = this.topicsOf(def.name);
    await backend.setTopics(topics, fresh ? topics : new Set());
    return runtime;
  }

  private topicsOf(queue: string): Set<string> {
    return new Set([...this.definitions.sourceExchangesOf(queue)].map(topicOfExchange));
  }

  /** After binding changes: every queue subscribes to the topics that can now reach it. */
  private async refreshSubscriptions(fromEnd = true): Promise<void> {
    await Promise.all(
      [...this.queues.values()].map(async (queue) => {
        const topics = this.topicsOf(queue.name);
        await queue.backend.setTopics(topics, fromEnd ? topics : new Set());
      }),
    );
  }

  checkExclusive(queue: QueueRuntime, connectionId: number, classId: number, methodId: number): void {
    if (queue.ownerConnectionId !== undefined && queue.ownerConnectionId !== connectionId) {
      throw fail(
        ReplyCode.ResourceLocked,
        `cannot obtain exclusive access to locked queue '${queue.name}' in vhost '${VHOST}'`,
        classId,
        methodId,
      );
    }
  }

  /** A queue for a method: 404 when missing, 405 when another connection owns it. */
  requireQueue(name: string, connectionId: number, classId: number, methodId: number): QueueRuntime {
    const queue = this.queues.get(name);
    if (queue === undefined)
      throw fail(ReplyCode.NotFound, `no queue '${name}' in vhost '${VHOST}'`, classId, methodId);
    this.checkExclusive(queue, connectionId, classId, methodId);
    return queue;
  }

  async deleteQueue(
    name: string,
    ifUnused: boolean,
    ifEmpty: boolean,
    connectionId: number,
    classId: number,
    methodId: number,
  ): Promise<number> {
    const queue = this.queues.get(name);
    if (queue === undefined) return 0;
    this.checkExclusive(queue, connectionId, classId, methodId);
    if (ifUnused && queue.consumers.length > 0) {
      throw fail(ReplyCode.PreconditionFailed, `queue '${name}' in vhost '${VHOST}' in use`, classId, methodId);
    }
    const count = await queue.backend.messageCount();
    if (ifEmpty && count > 0) {
      throw fail(ReplyCode.PreconditionFailed, `queue '${name}' in vhost '${VHOST}' is not empty`, classId, methodId);
    }
    await this.deleteQueueRuntime(queue, 'deleted');
    return count;
  }

  private async deleteQueueRuntime(queue: QueueRuntime, why: string, persist = true): Promise<void> {
    if (queue.deleted) return;
    queue.stop();
    this.queues.delete(queue.name);
    if (persist && queue.def.durable && !queue.def.exclusive)
      await this.persist({ op: 'queue.delete', name: queue.name });
    const removed = this.definitions.deleteQueue(queue.name);
    for (const consumer of [...queue.consumers]) consumer.channel.cancelledByServer(consumer);
    await queue.backend.purge().catch(() => 0);
    await queue.backend.stop();
    await this.autoDeleteExchanges(removed);
    log.debug({ queue: queue.name, why }, 'queue deleted');
  }

  async purgeQueue(name: string, connectionId: number, classId: number, methodId: number): Promise<number> {
    const queue = this.requireQueue(name, connectionId, classId, methodId);
    return queue.backend.purge();
  }

  /** The connection is gone: its exclusive queues go with it. */
  async connectionClosed(connectionId: number): Promise<void> {
    const owned = [...this.queues.values()].filter((queue) => queue.ownerConnectionId === connectionId);
    await Promise.all(owned.map((queue) => this.deleteQueueRuntime(queue, 'owner connection closed')));
  }

  // --- bindings ---------------------------------------------------------------------------

  async bind(binding: BindingDef, connectionId: number, classId: number, methodId: number): Promise<void> {
    this.checkBindingEnds(binding, connectionId, classId, methodId);
    if (!this.definitions.addBinding(binding)) return;
    try {
      if (this.bindingIsDurable(binding)) await this.persist({ op: 'bind', binding });
    } catch (err) {
      this.definitions.removeBinding(binding);
      throw err;
    }
    await this.refreshSubscriptions();
  }

  async unbind(binding: BindingDef, connectionId: number, classId: number, methodId: number): Promise<void> {
    this.checkBindingEnds(binding, connectionId, classId, methodId);
    if (!this.definitions.hasBinding(binding)) return;
    if (this.bindingIsDurable(binding)) await this.persist({ op: 'unbind', binding });
    this.definitions.removeBinding(binding);
    await this.refreshSubscriptions();
    await this.autoDeleteExchanges([binding]);
  }

  private checkBindingEnds(binding: BindingDef, connectionId: number, classId: number, methodId: number): void {
    if (binding.source === '' || (binding.destinationKind === 'exchange' && binding.destination === '')) {
      throw fail(ReplyCode.AccessRefused, `operation not permitted on the default exchange`, classId, methodId);
    }
    if (!this.definitions.exchanges.has(binding.source)) {
      throw fail(ReplyCode.NotFound, `no exchange '${binding.source}' in vhost '${VHOST}'`, classId, methodId);
    }
    if (binding.destinationKind === 'queue') this.requireQueue(binding.destination, connectionId, classId, methodId);
    else if (!this.definitions.exchanges.has(binding.destination)) {
      throw fail(ReplyCode.NotFound, `no exchange '${binding.destination}' in vhost '${VHOST}'`, classId, methodId);
    }
  }

  private bindingIsDurable(binding: BindingDef): boolean {
    const source = this.definitions.exchanges.get(binding.source);
    const destination =
      binding.destinationKind === 'queue'
        ? this.definitions.queues.get(binding.destination)
        : this.definitions.exchanges.get(binding.destination);
    const exclusive = destination !== undefined && 'exclusive' in destination && destination.exclusive;
    return source?.durable === true && destination?.durable === true && !exclusive;
  }

  private async autoDeleteExchanges(removed: readonly BindingDef[]): Promise<void> {
    for (const name of new Set(removed.map((binding) => binding.source))) {
      const def = this.definitions.exchanges.get(name);
      if (def?.autoDelete === true && this.definitions.bindingsFrom(name).length === 0) {
        if (def.durable) await this.persist({ op: 'exchange.delete', name });
        this.definitions.deleteExchange(name);
      }
    }
  }

  private async persist(event: DefinitionEvent): Promise<void> {
    // Not before a snapshot in flight: stored ahead of it, the event would be undone at replay by a
    // snapshot that does not show it.
    while (this.snapshotting !== undefined) await this.snapshotting;
    this.persistsInFlight++;
    try {
      await this.log.append(event);
      this.changesSinceSnapshot++;
    } catch (err) {
      log.warn({ err, op: event.op }, 'could not store a durable definition');
      throw new AmqpProtocolError(ReplyCode.InternalError, 'could not store the definition in the engine', {
        scope: 'channel',
        cause: err,
      });
    } finally {
      this.persistsInFlight--;
    }
  }

  // --- publishing -------------------------------------------------------------------------

  /** Queue names a publish reaches; throws 404 for an unknown exchange, 403 for an internal one. */
  routeOf(
    exchange: string,
    routingKey: string,
    properties: BasicProperties,
    classId: number,
    methodId: number,
  ): Set<string> {
    const def = this.definitions.exchanges.get(exchange);
    if (def === undefined)
      throw fail(ReplyCode.NotFound, `no exchange '${exchange}' in vhost '${VHOST}'`, classId, methodId);
    if (def.internal) {
      throw fail(ReplyCode.AccessRefused, `cannot publish to internal exchange '${exchange}'`, classId, methodId);
    }
    return this.definitions.route(exchange, routingKey, properties.headers);
  }

  /**
   * Stores a publish in the exchange's topic. Messages of one routing key go to one message queue
   * (hash of the key), so they stay in order for consumers. Resolves once the broker stored it.
   */
  async store(
    exchange: string,
    routingKey: string,
    properties: BasicProperties,
    body: Buffer,
    queues: ReadonlySet<string>,
    admission?: Admission,
  ): Promise<void> {
    const message = toEngineMessage({ exchange, routingKey, properties, body });
    if (admission !== undefined) {
      const own = message.properties ?? {};
      // The producer keeps a preset UNIQ_KEY: the admitted queues recognise the message by it.
      own[MessageProperty.UniqueClientMessageId] = admission.id;
      if (admission.rejected.length > 0) {
        own[AmqpProperty.RejectedBy] = admission.rejected.map((queue) => encodeName(queue.name)).join(',');
      }
      message.properties = own;
    }
    const bytes = message.body.length;
    const sent = this.enqueueSend(message, routingKey);
    this.inFlight.add(sent);
    this.flow.backlog(1, bytes);
    try {
      await sent;
    } catch (err) {
      if (admission !== undefined) for (const name of admission.accepted) this.queues.get(name)?.forget(admission.id);
      this.flow.storeFailed(err);
      throw err;
    } finally {
      this.inFlight.delete(sent);
      this.flow.backlog(-1, -bytes);
    }
    const topic = message.topic;
    for (const name of queues) this.queues.get(name)?.backend.topicWritten(topic);
  }

  /**
   * x-overflow reject-publish: which of `queues` take a publish of `bodyBytes` body bytes, and which
   * refuse it because it would not fit. Undefined (nothing to track) when none of them rejects
   * publishes, the common case.
   */
  admit(queues: ReadonlySet<string>, bodyBytes: number): Admission | undefined {
    let admission: { id: string; accepted: Set<string>; rejected: QueueRuntime[] } | undefined;
    for (const name of queues) {
      const queue = this.queues.get(name);
      if (queue === undefined || !queue.rejectsPublishes) continue;
      admission ??= { id: createUniqueMessageId(), accepted: new Set(queues), rejected: [] };
      if (!queue.admit(admission.id, bodyBytes)) {
        admission.accepted.delete(name);
        admission.rejected.push(queue);
      }
    }
    return admission;
  }

  /** reject-publish-dlx: the queues that refused a publish dead-letter it (reason maxlen). */
  deadLetterRejected(admission: Admission, content: AmqpContent): void {
    for (const queue of admission.rejected) {
      if (queue.policy.overflow !== 'reject-publish-dlx') continue;
      this.deadLetterContent(queue, content, 'maxlen').catch((err: unknown) =>
        log.warn({ err, queue: queue.name }, 'dead-lettering a rejected publish failed'),
      );
    }
  }

  /**
   * Publishes arriving in the same turn for one topic and routing key travel as one
   * SEND_BATCH_MESSAGE (same message queue, order kept): one broker round trip instead of many.
   */
  private enqueueSend(message: Message, routingKey: string): Promise<void> {
    const key = `${message.topic}\u0000${routingKey}`;
    let batch = this.sendBatches.get(key);
    if (
      batch === undefined ||
      batch.messages.length >= SEND_BATCH_MAX_MESSAGES ||
      batch.bytes >= SEND_BATCH_MAX_BYTES
    ) {
      batch = { messages: [], bytes: 0, waiters: [] };
      this.sendBatches.set(key, batch);
      const scheduled = batch;
      setImmediate(() => {
        if (this.sendBatches.get(key) === scheduled) this.sendBatches.delete(key);
        this.flushBatch(scheduled, routingKey);
      });
    }
    batch.messages.push(message);
    batch.bytes += message.body.length + 256;
    return new Promise<void>((resolve, reject) => batch.waiters.push({ resolve, reject }));
  }

  private flushBatch(batch: SendBatch, routingKey: string): void {
    const hash = javaStringHashCode(routingKey) & 0x7fffffff;
    const options = { selector: (mqs: readonly MessageQueue[]) => mqs[hash % mqs.length] as MessageQueue };
    const settleEach = (): void => {
      batch.messages.forEach((message, i) => {
        const waiter = batch.waiters[i];
        this.producer.send(message, options).then(
          () => waiter?.resolve(),
          (err: unknown) => waiter?.reject(err),
        );
      });
    };
    if (batch.messages.length === 1) {
      settleEach();
      return;
    }
    // A broker may refuse a batch it cannot store whole (e.g. over its segment size): send one by one then.
    this.producer.sendBatch(batch.messages, options).then(
      () => {
        for (const waiter of batch.waiters) waiter.resolve();
      },
      (err: unknown) => {
        log.debug({ err, messages: batch.messages.length }, 'batch send refused; sending one by one');
        settleEach();
      },
    );
  }

  /**
   * Republishes a message a queue gave up on to its dead-letter exchange, with RabbitMQ's x-death
   * history (newest first, one entry per queue and reason with a count) and x-first-death-*
   * headers; the expiration property is removed. A missing exchange drops the message, as RabbitMQ.
   */
  async deadLetter(queue: QueueRuntime, message: MessageExt, reason: DeadLetterReason): Promise<void> {
    await this.deadLetterContent(queue, toAmqpContent(message), reason);
  }

  private async deadLetterContent(queue: QueueRuntime, content: AmqpContent, reason: DeadLetterReason): Promise<void> {
    const exchange = queue.policy.deadLetterExchange;
    if (exchange === undefined || !this.definitions.exchanges.has(exchange)) return;
    const routingKey = queue.policy.deadLetterRoutingKey ?? content.routingKey;
    const headers: FieldTable = { ...(content.properties.headers ?? {}) };
    const previous = headers['x-death'];
    const deaths: FieldValue[] = Array.isArray(previous) ? [...(previous as FieldValue[])] : [];
    const time = new FieldTyped('T', Math.floor(Date.now() / 1000));
    const at = deaths.findIndex((death) => {
      const table = death as FieldTable | null;
      return typeof table === 'object' && table !== null && table['queue'] === queue.name && table['reason'] === reason;
    });
    if (at >= 0) {
      const death = { ...(deaths[at] as FieldTable) };
      death['count'] = Number(comparable(death['count'] ?? 0)) + 1;
      death['time'] = time;
      deaths.splice(at, 1);
      deaths.unshift(death);
    } else {
      deaths.unshift({
        count: 1,
        reason,
        queue: queue.name,
        time,
        exchange: content.exchange,
        'routing-keys': [content.routingKey],
      });
    }
    headers['x-death'] = deaths;
    headers['x-first-death-reason'] ??= reason;
    headers['x-first-death-queue'] ??= queue.name;
    headers['x-first-death-exchange'] ??= content.exchange;
    const properties = { ...content.properties, headers, expiration: undefined };
    const queues = this.definitions.route(exchange, routingKey, headers);
    if (exchange === '' && queues.size === 0) return;
    const admission = this.admit(queues, content.body.length);
    const accepted = admission?.accepted ?? queues;
    if (exchange === '' && accepted.size === 0) return;
    await this.store(exchange, routingKey, properties, content.body, accepted, admission);
  }

  /** Direct reply-to: the channel each reply token belongs to. */
  registerReplyChannel(token: string, channel: ReplyChannel): void {
    this.replyChannels.set(token, channel);
  }

  unregisterReplyChannel(token: string): void {
    this.replyChannels.delete(token);
  }

  replyChannel(token: string): ReplyChannel | undefined {
    return this.replyChannels.get(token);
  }

  /** Resolves when every store begun before the call has finished (basic.get sees earlier publishes). */
  async storesSettled(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }
}
