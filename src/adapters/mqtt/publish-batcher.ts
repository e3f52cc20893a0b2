/**
 * Coalesces the MQTT publishes that reach the engine in one turn of the event loop into
 * SEND_BATCH_MESSAGE requests: aedes hands us every PUBLISH of a socket read at once, and one
 * request (one broker dispatch, one store append, one flush wait) for all of them costs a fraction
 * of one request each. Messages are grouped by engine topic, then by the queue their MQTT name
 * selects, so one name's messages stay in one queue in publish order; each message's promise
 * settles with its batch, so a QoS 1 PUBACK still waits until the broker stored the message (per
 * its flush mode), and a failed batch fails every message in it.
 */
import { javaStringHashCode } from '../../engine/common/java-hash.js';
import type { Message, MessageQueue, Producer, SendResult } from '../../engine/client/index.js';

/** The broker's default maxBatchMessageCount is 1024; well below it keeps latency per batch small. */
const MAX_BATCH_MESSAGES = 256;
/** Bodies per batch; a single larger message still goes alone (the limit is the broker's 4 MiB). */
const MAX_BATCH_BYTES = 1024 * 1024;

interface PendingPublish<T> {
  /** The MQTT topic name: selects the queue. */
  name: string;
  message: Message;
  /** What the owner gets back with the stored batch. */
  context: T;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Called once per stored batch, before its publishes resolve. */
export type BatchStored<T> = (
  /** The engine topic. */
  topic: string,
  /** The batch's queue and the queue offset of its first message. */
  result: SendResult,
  /** The contexts of the batch's messages, in queue order. */
  contexts: readonly T[],
) => void;

/** Queues sorted by broker name and id, per write-queue array (the producer shares one per route). */
const sortedQueues = new WeakMap<readonly MessageQueue[], readonly MessageQueue[]>();

function sorted(queues: readonly MessageQueue[]): readonly MessageQueue[] {
  let result = sortedQueues.get(queues);
  if (result === undefined) {
    result = [...queues].sort((a, b) =>
      a.brokerName === b.brokerName ? a.queueId - b.queueId : a.brokerName < b.brokerName ? -1 : 1,
    );
    sortedQueues.set(queues, result);
  }
  return result;
}

/** The queue of an MQTT topic name among a topic's write queues, so one name's messages stay in order. */
export function queueOfName(name: string, queues: readonly MessageQueue[]): MessageQueue {
  const candidates = sorted(queues);
  return candidates[(javaStringHashCode(name) >>> 0) % candidates.length] as MessageQueue;
}

/** Sends publishes in per-turn batches through one Producer. */
export class PublishBatcher<T> {
  /** Publishes waiting for the end of this turn, by engine topic, in arrival order. */
  private pending = new Map<string, PendingPublish<T>[]>();
  private scheduled = false;
  /** Topics whose queues are being looked up, with the groups that came later: none overtakes. */
  private readonly waiting = new Map<string, PendingPublish<T>[][]>();

  constructor(
    private readonly producer: Producer,
    private readonly onStored: BatchStored<T>,
  ) {}

  /** Resolves once the broker stored the message; rejects when its batch could not be stored. */
  publish(name: string, message: Message, context: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let group = this.pending.get(message.topic);
      if (group === undefined) {
        group = [];
        this.pending.set(message.topic, group);
      }
      group.push({ name, message, context, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // After the promise jobs of this turn: aedes reaches us for QoS 0 a few promise hops after
        // parsing, so a tick (which runs once the microtask queue is empty) still sees them all.
        process.nextTick(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const groups = this.pending;
    this.pending = new Map();
    for (const [topic, group] of groups) this.sendTopic(topic, group);
  };

  private sendTopic(topic: string, group: PendingPublish<T>[]): void {
    const waiting = this.waiting.get(topic);
    if (waiting !== undefined) {
      waiting.push(group);
      return;
    }
    const first = group[0] as PendingPublish<T>;
    if (group.every((entry) => entry.name === first.name)) {
      this.sendChunks(topic, first.name, group);
      return;
    }
    // Several names: their queues come from the topic's route (the producer's cached one).
    this.waiting.set(topic, []);
    this.producer
      .fetchPublishQueues(topic)
      .then(
        (queues) => {
          const byQueue =
            queues.length === 0
              ? partition(group, (entry) => entry.name) // each send fails as the producer says
              : partition(group, (entry) => queueOfName(entry.name, queues));
          for (const entries of byQueue.values()) {
            this.sendChunks(topic, (entries[0] as PendingPublish<T>).name, entries);
          }
        },
        (err: unknown) => failAll(group, err),
      )
      .finally(() => {
        const later = this.waiting.get(topic) ?? [];
        this.waiting.delete(topic);
        for (const next of later) this.sendTopic(topic, next);
      });
  }

  /** Sends `entries` (one queue) in batches of bounded size, in order. */
  private sendChunks(topic: string, selectorName: string, entries: PendingPublish<T>[]): void {
    const selector = (queues: readonly MessageQueue[]): MessageQueue => queueOfName(selectorName, queues);
    let start = 0;
    while (start < entries.length) {
      let end = start;
      let bytes = 0;
      while (end < entries.length && end - start < MAX_BATCH_MESSAGES) {
        const size = (entries[end] as PendingPublish<T>).message.body.length;
        if (end > start && bytes + size > MAX_BATCH_BYTES) break;
        bytes += size;
        end++;
      }
      const chunk = entries.slice(start, end);
      start = end;
      const sent =
        chunk.length === 1
          ? this.producer.send((chunk[0] as PendingPublish<T>).message, { selector })
          : this.producer.sendBatch(
              chunk.map((entry) => entry.message),
              { selector },
            );
      sent.then(
        (result) => {
          try {
            this.onStored(
              topic,
              result,
              chunk.map((entry) => entry.context),
            );
          } finally {
            for (const entry of chunk) entry.resolve();
          }
        },
        (err: unknown) => failAll(chunk, err),
      );
    }
  }
}

function failAll<T>(entries: readonly PendingPublish<T>[], err: unknown): void {
  const error = err instanceof Error ? err : new Error(String(err));
  for (const entry of entries) entry.reject(error);
}

function partition<T, K>(
  entries: readonly PendingPublish<T>[],
  keyOf: (entry: PendingPublish<T>) => K,
): Map<K, PendingPublish<T>[]> {
  const groups = new Map<K, PendingPublish<T>[]>();
  for (const entry of entries) {
    const key = keyOf(entry);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [entry]);
    else group.push(entry);
  }
  return groups;
}
