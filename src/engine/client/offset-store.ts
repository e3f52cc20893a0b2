/**
 * Where a consumer keeps its queue offsets (RocketMQ OffsetStore). Clustering groups keep them in the
 * broker (RemoteOffsetStore: memory first, committed periodically, on queue release and on shutdown);
 * broadcasting members each keep their own in a local JSON file (LocalOffsetStore), written atomically.
 */
import { join } from 'node:path';
import { readJsonFile, writeFileAtomic } from '../common/atomic-file.js';
import { createLogger } from '../common/logger.js';
import { queryConsumerOffset, updateConsumerOffset } from './broker-api.js';
import type { ClientInstance } from './client-instance.js';
import { type MessageQueue, queueKey } from './route.js';

const log = createLogger('offset-store');

export interface OffsetStore {
  /** Loads persisted offsets (local store). */
  load(): Promise<void>;
  /** Remembers an offset in memory; with `increaseOnly`, never moves it back. */
  update(queue: MessageQueue, queueOffset: number, increaseOnly: boolean): void;
  /** The offset in memory, or -1. */
  readMemory(queue: MessageQueue): number;
  /** The persisted offset (broker or file), or -1 when there is none. */
  readStored(queue: MessageQueue): Promise<number>;
  /** Persists the offsets of `queues`. */
  persistAll(queues: readonly MessageQueue[]): Promise<void>;
  persist(queue: MessageQueue): Promise<void>;
  /** Forgets a queue that this member no longer owns. */
  remove(queue: MessageQueue): void;
}

abstract class MemoryOffsets {
  protected readonly offsets = new Map<string, { queue: MessageQueue; queueOffset: number }>();

  update(queue: MessageQueue, queueOffset: number, increaseOnly: boolean): void {
    const key = queueKey(queue);
    const current = this.offsets.get(key);
    if (current !== undefined && increaseOnly && queueOffset <= current.queueOffset) return;
    this.offsets.set(key, { queue, queueOffset });
  }

  readMemory(queue: MessageQueue): number {
    return this.offsets.get(queueKey(queue))?.queueOffset ?? -1;
  }

  remove(queue: MessageQueue): void {
    this.offsets.delete(queueKey(queue));
  }
}

/** Offsets of a clustering group, kept by the broker. */
export class RemoteOffsetStore extends MemoryOffsets implements OffsetStore {
  /** What the broker last acknowledged, so unchanged offsets are not sent again. */
  private readonly committed = new Map<string, number>();

  constructor(
    private readonly instance: ClientInstance,
    private readonly group: string,
  ) {
    super();
  }

  async load(): Promise<void> {}

  async readStored(queue: MessageQueue): Promise<number> {
    const queueOffset = await queryConsumerOffset(this.instance, this.group, queue);
    if (queueOffset >= 0) {
      this.update(queue, queueOffset, false);
      this.committed.set(queueKey(queue), queueOffset);
    }
    return queueOffset;
  }

  async persistAll(queues: readonly MessageQueue[]): Promise<void> {
    await Promise.all(queues.map((queue) => this.persist(queue)));
  }

  async persist(queue: MessageQueue): Promise<void> {
    const key = queueKey(queue);
    const queueOffset = this.readMemory(queue);
    if (queueOffset < 0 || this.committed.get(key) === queueOffset) return;
    try {
      await updateConsumerOffset(this.instance, this.group, queue, queueOffset);
      this.committed.set(key, queueOffset);
    } catch (err) {
      log.warn({ err, queue: key, queueOffset }, 'committing the consumer offset failed');
    }
  }

  override remove(queue: MessageQueue): void {
    super.remove(queue);
    this.committed.delete(queueKey(queue));
  }
}

interface OffsetFile {
  offsetTable: Record<string, { topic: string; brokerName: string; queueId: number; queueOffset: number }>;
}

/** Offsets of one broadcasting member, in `<dir>/<group>/offsets.json`. */
export class LocalOffsetStore extends MemoryOffsets implements OffsetStore {
  readonly path: string;

  constructor(dir: string, group: string) {
    super();
    this.path = join(dir, group, 'offsets.json');
  }

  async load(): Promise<void> {
    let file: OffsetFile | undefined;
    try {
      file = readJsonFile<OffsetFile>(this.path);
    } catch (err) {
      log.warn({ err, path: this.path }, 'offset file unreadable; starting without stored offsets');
      return;
    }
    for (const entry of Object.values(file?.offsetTable ?? {})) {
      if (typeof entry.topic === 'string' && Number.isInteger(entry.queueOffset)) {
        const queue = { topic: entry.topic, brokerName: entry.brokerName, queueId: entry.queueId };
        this.offsets.set(queueKey(queue), { queue, queueOffset: entry.queueOffset });
      }
    }
  }

  async readStored(queue: MessageQueue): Promise<number> {
    return this.readMemory(queue);
  }

  async persistAll(): Promise<void> {
    const file: OffsetFile = { offsetTable: {} };
    for (const [key, { queue, queueOffset }] of this.offsets) file.offsetTable[key] = { ...queue, queueOffset };
    try {
      writeFileAtomic(this.path, JSON.stringify(file, null, 2));
    } catch (err) {
      log.warn({ err, path: this.path }, 'writing the offset file failed');
    }
  }

  async persist(): Promise<void> {
    await this.persistAll();
  }

  /** A broadcasting member keeps offsets of queues it no longer reads, for when it reads them again. */
  override remove(): void {}
}
