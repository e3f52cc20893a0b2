/**
 * Committed consumer offsets (RocketMQ ConsumerOffsetManager): "topic@group" -> queueId -> the next
 * queue offset the group will consume. It owns `<storePath>/config/consumerOffset.json` in RocketMQ's
 * shape {"offsetTable":{"topic@group":{"0":12}}}, written atomically every persist interval (when
 * something changed) and at shutdown, so a restart resumes where the group left off.
 *
 * The periodic write runs on the thread pool (SerialAtomicFile): a commit was never durable before
 * its response (only at the next interval or at shutdown), so nothing waits on it; writes do not
 * overlap, each holds the whole table as of its start, and shutdown awaits the one in flight and
 * then writes the final table.
 */
import { join } from 'node:path';
import { createLogger } from '../common/logger.js';
import { SerialAtomicFile } from '../common/atomic-file.js';
import { readLenientJsonFile } from './lenient-json.js';

const TOPIC_GROUP_SEPARATOR = '@';
const log = createLogger('consumer-offset');

export class ConsumerOffsetManager {
  private readonly table = new Map<string, Map<number, number>>();
  private readonly file: SerialAtomicFile;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(configDir: string) {
    this.file = new SerialAtomicFile(join(configDir, 'consumerOffset.json'));
  }

  load(): void {
    const stored = readLenientJsonFile(this.file.path) as
      { offsetTable?: Record<string, Record<string, unknown>> } | undefined;
    for (const [key, queues] of Object.entries(stored?.offsetTable ?? {})) {
      if (!key.includes(TOPIC_GROUP_SEPARATOR) || typeof queues !== 'object' || queues === null) continue;
      const offsets = new Map<number, number>();
      for (const [queueId, queueOffset] of Object.entries(queues)) {
        const id = Number(queueId);
        if (Number.isInteger(id) && id >= 0 && typeof queueOffset === 'number' && Number.isSafeInteger(queueOffset)) {
          offsets.set(id, queueOffset);
        } else {
          log.warn({ key, queueId }, 'ignoring malformed offset in consumerOffset.json');
        }
      }
      this.table.set(key, offsets);
    }
  }

  /** Starts the periodic persist. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => this.persistIfDirty(), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes the file (after the periodic write in flight, if any). */
  async shutdown(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.persistAsync();
  }

  commit(group: string, topic: string, queueId: number, queueOffset: number): void {
    const key = topic + TOPIC_GROUP_SEPARATOR + group;
    let offsets = this.table.get(key);
    if (offsets === undefined) {
      offsets = new Map();
      this.table.set(key, offsets);
    }
    offsets.set(queueId, queueOffset);
    this.dirty = true;
  }

  /** The committed offset, or -1 when the group never committed one for this queue. */
  query(group: string, topic: string, queueId: number): number {
    return this.table.get(topic + TOPIC_GROUP_SEPARATOR + group)?.get(queueId) ?? -1;
  }

  /** Every (topic, queueId, offset) the group has committed. */
  offsetsOfGroup(group: string): { topic: string; queueId: number; queueOffset: number }[] {
    const result: { topic: string; queueId: number; queueOffset: number }[] = [];
    for (const [key, offsets] of this.table) {
      const at = key.lastIndexOf(TOPIC_GROUP_SEPARATOR);
      if (key.slice(at + 1) !== group) continue;
      for (const [queueId, queueOffset] of offsets) result.push({ topic: key.slice(0, at), queueId, queueOffset });
    }
    return result;
  }

  private persistIfDirty(): void {
    // A write still running (slow disk) is not queued behind: the next tick picks the change up.
    if (!this.dirty || this.file.busy) return;
    this.persistAsync().catch((err: unknown) => {
      this.dirty = true;
      log.error({ err }, 'writing consumerOffset.json failed');
    });
  }

  /** Writes the table now, synchronously (durable on return). */
  persist(): void {
    this.dirty = false;
    this.file.writeSync(this.render());
  }

  /** Writes the table on the thread pool; resolves once it is durable. */
  persistAsync(): Promise<void> {
    this.dirty = false;
    return this.file.write(() => this.render());
  }

  private render(): string {
    return JSON.stringify({ offsetTable: this.offsetTable() }, null, 2);
  }

  /** The whole table in consumerOffset.json's shape (GET_ALL_CONSUMER_OFFSET, slave sync). */
  offsetTable(): Record<string, Record<string, number>> {
    const offsetTable: Record<string, Record<string, number>> = {};
    for (const [key, offsets] of this.table) offsetTable[key] = Object.fromEntries(offsets);
    return offsetTable;
  }
}
