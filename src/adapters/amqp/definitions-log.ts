/**
 * Durable AMQP definitions kept through the engine client, never in files of their own: every
 * change to a durable exchange, queue or binding is one JSON event in the system topic
 * RB_SYS_AMQP_DEFINITIONS, always written to its lowest write queue so the events keep their order.
 * At start the log is replayed into a Definitions with a PullConsumer; afterwards it is followed, so
 * several gateway processes on one engine share their topology.
 *
 * The log lives in the CommitLog, whose retention deletes old segments (72 h by default, sooner
 * under disk pressure) whatever topic they hold: a queue declared a week ago would be gone at the
 * next restart. So the vhost appends a snapshot event (the whole durable topology) at start and
 * then periodically (vhost.ts): replay starts at the last snapshot, found by a tag-filtered scan of
 * the consume queue, and the events after it; what came before is history retention may drop.
 * Followers skip snapshots: they applied the events a snapshot sums up.
 */
import { randomUUID } from 'node:crypto';
import { PullConsumer, queueKey, type MessageQueue, type Producer, type Transport } from '../../engine/client/index.js';
import { ErrorCode, isRbError } from '../../engine/common/errors.js';
import { createLogger } from '../../engine/common/logger.js';
import {
  type BindingDef,
  type Definitions,
  type ExchangeDef,
  type ExchangeType,
  isReservedExchangeName,
  type QueueDef,
} from './definitions.js';
import { encodeFieldTable, readFieldTable, type FieldTable } from './field-table.js';

const log = createLogger('amqp-definitions');

export const DEFINITIONS_TOPIC = 'RB_SYS_AMQP_DEFINITIONS';
const READER_GROUP = 'RB_SYS_AMQP_DEFINITIONS_READER';
const PULL_BATCH = 32;
/** Bounds the replay loop: at most this many pulls per queue. */
const MAX_PULLS_PER_QUEUE = 1_000_000;

export type DefinitionEvent =
  | { op: 'exchange.declare'; exchange: ExchangeDef }
  | { op: 'exchange.delete'; name: string }
  | { op: 'queue.declare'; queue: QueueDef }
  | { op: 'queue.delete'; name: string }
  | { op: 'bind'; binding: BindingDef }
  | { op: 'unbind'; binding: BindingDef }
  | { op: 'snapshot'; exchanges: ExchangeDef[]; queues: QueueDef[]; bindings: BindingDef[] };

/** A snapshot larger than this is not written (the broker's message limit is 4 MiB). */
const MAX_SNAPSHOT_BYTES = 3.5 * 1024 * 1024;

/** Field tables travel as base64 of their AMQP encoding, so typed values survive. */
function encodeEvent(event: DefinitionEvent): Buffer {
  return Buffer.from(
    JSON.stringify(event, (key, value: unknown) =>
      key === 'arguments' ? encodeFieldTable(value as FieldTable).toString('base64') : value,
    ),
    'utf8',
  );
}

function decodeEvent(body: Buffer): DefinitionEvent | undefined {
  try {
    return JSON.parse(body.toString('utf8'), (key, value: unknown) =>
      key === 'arguments' && typeof value === 'string' ? readFieldTable(Buffer.from(value, 'base64'), 0).value : value,
    ) as DefinitionEvent;
  } catch (err) {
    log.warn({ err }, 'skipping an unreadable definitions event');
    return undefined;
  }
}

/** Applies one event to the in-memory topology (replay and live changes share this). */
export function applyEvent(definitions: Definitions, event: DefinitionEvent): void {
  switch (event.op) {
    case 'exchange.declare':
      if (!isReservedExchangeName(event.exchange.name)) {
        definitions.exchanges.set(event.exchange.name, {
          ...event.exchange,
          type: event.exchange.type as ExchangeType,
        });
      }
      break;
    case 'exchange.delete':
      definitions.deleteExchange(event.name);
      break;
    case 'queue.declare':
      definitions.queues.set(event.queue.name, event.queue);
      break;
    case 'queue.delete':
      definitions.deleteQueue(event.name);
      break;
    case 'bind':
      definitions.addBinding(event.binding);
      break;
    case 'unbind':
      definitions.removeBinding(event.binding);
      break;
    case 'snapshot':
      // Replay only (followers skip snapshots): everything so far came from the log, and the
      // snapshot says what of it is left.
      for (const binding of definitions.allBindings()) definitions.removeBinding(binding);
      for (const name of [...definitions.queues.keys()]) definitions.deleteQueue(name);
      for (const name of [...definitions.exchanges.keys()]) {
        if (!isReservedExchangeName(name)) definitions.deleteExchange(name);
      }
      for (const exchange of event.exchanges) applyEvent(definitions, { op: 'exchange.declare', exchange });
      for (const queue of event.queues) applyEvent(definitions, { op: 'queue.declare', queue });
      for (const binding of event.bindings) definitions.addBinding(binding);
      break;
  }
}

/** What a replay found: the events from the last snapshot on, and how many came after it. */
export interface Replay {
  events: DefinitionEvent[];
  eventsAfterSnapshot: number;
}

export interface DefinitionsLogOptions {
  nameServers: readonly string[];
  transport?: Transport;
  producer: Producer;
  /** Long polling time while following the log (default 1000 ms). */
  followPollMs?: number;
}

/** An event as stored: the gateway that wrote it travels along, so followers skip their own. */
type StoredEvent = DefinitionEvent & { origin?: string };

/**
 * Appends events, replays them at start, then follows the log so changes made through other
 * gateway processes on the same engine reach this one (within about followPollMs).
 */
export class DefinitionsLog {
  /** Identifies this process's events in the log. */
  readonly origin = randomUUID();
  private consumer: PullConsumer | undefined;
  private readonly nextOffsets = new Map<string, { queue: MessageQueue; offset: number }>();
  private following = false;

  constructor(private readonly options: DefinitionsLogOptions) {}

  /** Stores one event; resolves once the broker has stored it. */
  async append(event: DefinitionEvent): Promise<void> {
    const stored: StoredEvent = { ...event, origin: this.origin };
    const body = encodeEvent(stored);
    if (event.op === 'snapshot' && body.length > MAX_SNAPSHOT_BYTES) {
      throw new Error(`the durable topology (${body.length} bytes as a snapshot) is too large for one message`);
    }
    await this.options.producer.send(
      { topic: DEFINITIONS_TOPIC, body, tags: event.op },
      { selector: (queues) => lowestQueue(queues) },
    );
  }

  /** Reads the stored events from the last snapshot on, in order (call once, before follow). */
  async readAll(): Promise<Replay> {
    const consumer = this.openConsumer();
    await consumer.start();
    let queues: MessageQueue[];
    try {
      queues = await consumer.fetchQueues(DEFINITIONS_TOPIC);
    } catch (err) {
      if (isRbError(err, ErrorCode.TopicNotExist)) return { events: [], eventsAfterSnapshot: 0 };
      throw err;
    }
    const found: { queueId: number; queueOffset: number; event: DefinitionEvent }[] = [];
    let eventsAfterSnapshot = 0;
    for (const queue of queues) {
      const maxOffset = await consumer.maxOffset(queue);
      const minOffset = await consumer.minOffset(queue);
      const snapshotOffset = await lastSnapshotOffset(consumer, queue, minOffset, maxOffset);
      let offset = snapshotOffset ?? minOffset;
      for (let pulls = 0; offset < maxOffset && pulls < MAX_PULLS_PER_QUEUE; pulls++) {
        const result = await consumer.pull(queue, '*', offset, PULL_BATCH);
        for (const message of result.messages) {
          const event = decodeEvent(message.body);
          if (event === undefined) continue;
          found.push({ queueId: message.queueId, queueOffset: message.queueOffset, event });
          if (event.op !== 'snapshot') eventsAfterSnapshot++;
        }
        if (result.nextBeginOffset <= offset) break;
        offset = result.nextBeginOffset;
      }
      this.nextOffsets.set(queueKey(queue), { queue, offset });
    }
    found.sort((a, b) => a.queueId - b.queueId || a.queueOffset - b.queueOffset);
    return { events: found.map((each) => each.event), eventsAfterSnapshot };
  }

  /** Calls `listener` for each event other gateways append from now on, until close. */
  follow(listener: (event: DefinitionEvent) => Promise<void>): void {
    if (this.following) return;
    this.following = true;
    void this.followLoop(listener);
  }

  async close(): Promise<void> {
    this.following = false;
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.shutdown();
  }

  private openConsumer(): PullConsumer {
    const consumerOptions: ConstructorParameters<typeof PullConsumer>[0] = {
      group: READER_GROUP,
      nameServers: this.options.nameServers,
    };
    if (this.options.transport !== undefined) consumerOptions.transport = this.options.transport;
    this.consumer = new PullConsumer(consumerOptions);
    return this.consumer;
  }

  private async followLoop(listener: (event: DefinitionEvent) => Promise<void>): Promise<void> {
    const pollMs = this.options.followPollMs ?? 1000;
    for (let round = 0; this.following && round < Number.MAX_SAFE_INTEGER; round++) {
      const consumer = this.consumer;
      if (consumer === undefined) return;
      try {
        if (this.nextOffsets.size === 0) {
          // The log did not exist at start: wait for its queues to appear.
          for (const queue of await consumer.fetchQueues(DEFINITIONS_TOPIC)) {
            this.nextOffsets.set(queueKey(queue), { queue, offset: 0 });
          }
          continue;
        }
        // Events go to the lowest queue; follow that one with long polling.
        const cursor = [...this.nextOffsets.values()].sort((a, b) => a.queue.queueId - b.queue.queueId)[0];
        if (cursor === undefined) continue;
        const result = await consumer.pull(cursor.queue, '*', cursor.offset, PULL_BATCH, { suspendMs: pollMs });
        if (!this.following) return;
        for (const message of result.messages) {
          const event = decodeEvent(message.body) as StoredEvent | undefined;
          if (event === undefined || event.origin === this.origin || event.op === 'snapshot') continue;
          await listener(event).catch((err: unknown) =>
            log.warn({ err, op: event.op }, 'applying a remote definition failed'),
          );
        }
        if (result.nextBeginOffset > cursor.offset) cursor.offset = result.nextBeginOffset;
      } catch (err) {
        if (!this.following) return;
        if (!isRbError(err, ErrorCode.TopicNotExist))
          log.debug({ err }, 'following the definitions log failed; retrying');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pollMs);
          timer.unref();
        });
      }
    }
  }
}

/**
 * The queue offset of the last snapshot event in [minOffset, maxOffset), if any: a pull filtered by
 * the tag 'snapshot' reads only the consume queue's units for the others (no message bodies).
 */
async function lastSnapshotOffset(
  consumer: PullConsumer,
  queue: MessageQueue,
  minOffset: number,
  maxOffset: number,
): Promise<number | undefined> {
  let last: number | undefined;
  let offset = minOffset;
  for (let pulls = 0; offset < maxOffset && pulls < MAX_PULLS_PER_QUEUE; pulls++) {
    const result = await consumer.pull(queue, 'snapshot', offset, PULL_BATCH);
    for (const message of result.messages) last = message.queueOffset;
    if (result.nextBeginOffset <= offset) break;
    offset = result.nextBeginOffset;
  }
  return last;
}

function lowestQueue(queues: readonly MessageQueue[]): MessageQueue {
  let best = queues[0] as MessageQueue;
  for (const queue of queues) {
    if (queue.brokerName < best.brokerName || (queue.brokerName === best.brokerName && queue.queueId < best.queueId)) {
      best = queue;
    }
  }
  return best;
}
