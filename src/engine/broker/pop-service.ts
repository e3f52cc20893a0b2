/**
 * Per-message acknowledgement state (RocketMQ 5 pop): for each group + topic + queue, the next queue
 * offset never popped and the leases in flight. POP leases messages past that offset to any member
 * of the group, each invisible for its invisibleTime; ACK ends a lease; CHANGE_MESSAGE_INVISIBLETIME
 * moves its deadline (0 = now: a nack). A lease whose deadline passes is revived as RocketMQ's
 * PopReviveService does: the message is re-stored in the group's pop retry topic
 * `%RETRY%<group>_<topic>` with reconsumeTimes + 1 (or in `%DLQ%<group>` once it was consumed
 * maxReconsumeTimes times) and the lease ends; pops read the retry topic like any other queue.
 * The group's committed offset (ConsumerOffsetManager) follows the lowest offset not yet done, so
 * consume stats and lag work for pop groups too.
 *
 * Durability (ours): every state change is a JSON line appended to `config/popState.journal`
 * (written with writeSync before the request is answered, so it survives a process crash; fdatasync
 * every store flush interval and at shutdown) with a sequence number. The journal is compacted into
 * `config/popState.json` at start, at shutdown and when it outgrows popJournalMaxBytes; replay skips
 * records the snapshot already holds and stops at a torn last line. So after a restart an unacked
 * message is revived when its lease runs out and an acked one never comes back. A revive re-stores
 * before it records the lease's end: a crash in between can revive a message twice (at least once,
 * never lost).
 *
 * Off the event loop: the appends stay synchronous (a page-cache copy, and what makes a record
 * survive a process crash before its answer), but the timed fdatasync and the compaction's fsyncs
 * run on the thread pool. At most one flush runs at a time; records appended while it runs leave
 * the journal dirty for the next one, so a record is still fdatasynced within about one interval.
 * A compaction while serving opens `popState.journal.next` and, in that same tick, renders the
 * snapshot up to seq S; from then on every record goes to both journals, and every flush syncs
 * both. Once the snapshot is durable, the next journal is renamed over the old one and the next
 * flush also fsyncs the directory. Why that is safe: a record <= S is in the durable snapshot
 * before the rename; a record > S is in both files, and whatever fdatasync made it durable in the
 * old one made it durable in the new one too; a crash before the rename (or before it reaches
 * the disk) replays the old journal, which holds everything. The old descriptor is closed only
 * after the flushes that hold it have finished. Shutdown waits for the revive, the compaction and
 * the flush in flight, compacts once more and fdatasyncs the journal before closing it.
 */
import { close, closeSync, fdatasync, fdatasyncSync, fsync, open, openSync, readFileSync, writeSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import { createLogger } from '../common/logger.js';
import { OffsetTable } from '../common/churn-map.js';
import { Field } from '../common/message-record.js';
import { MessageProperty } from '../common/properties.js';
import { parseTagExpression, type TagFilter } from '../common/tag-expression.js';
import { RETRY_GROUP_TOPIC_PREFIX, dlqTopicOf } from '../common/topic.js';
import { GetStatus, PutStatus, type MessageStore } from '../store/api.js';
import { readJsonFile, writeFileAtomic, writeFileAtomicAsync } from '../common/atomic-file.js';
import type { ConsumerOffsetManager } from './consumer-offset-manager.js';
import { type HeapPositioned, IndexedMinHeap } from './min-heap.js';
import { popRetryTopicOf, restoreAs, userProperties } from './system-message.js';
import { PERM_READ_WRITE, type TopicConfigManager } from './topic-config-manager.js';

const log = createLogger('pop');
const openAsync = promisify(open);
const closeAsync = promisify(close);
const fdatasyncAsync = promisify(fdatasync);
const fsyncAsync = promisify(fsync);

async function fsyncDirectoryAsync(dir: string): Promise<void> {
  const fd = await openAsync(dir, 'r');
  try {
    await fsyncAsync(fd);
  } finally {
    await closeAsync(fd);
  }
}
const ALL = parseTagExpression('*');
const RETRY_AFTER_FAILURE_MS = 1000;
/** Share of pops that read the retry topic before the topic's queues (RocketMQ: 1 in 5). */
const RETRY_FIRST_RATIO = 0.2;

/** ConsumeInitMode: where a group without an offset starts. */
export const ConsumeInitMode = { Min: 0, Max: 1 } as const;

/** A message leased to the group; in the deadline heap while it is not being revived. */
interface Lease extends HeapPositioned {
  readonly state: QueueState;
  readonly queueOffset: number;
  readonly commitLogOffset: number;
  popTime: number;
  invisibleTimeMs: number;
  deadlineMs: number;
  reviving: boolean;
}

interface QueueState {
  readonly group: string;
  readonly topic: string;
  readonly queueId: number;
  nextPopOffset: number;
  /** By queue offset, knowing the smallest (a lease comes and goes per message: see churn-map.ts). */
  readonly leases: OffsetTable<Lease>;
}

type JournalRecord =
  | { s: number; k: 'next' | 'reset'; g: string; t: string; q: number; n: number }
  | { s: number; k: 'pop'; g: string; t: string; q: number; n: number; p: number; i: number; o: number[]; c: number[] }
  | { s: number; k: 'ack'; g: string; t: string; q: number; o: number }
  | { s: number; k: 'acks'; g: string; t: string; q: number; o: number[] }
  | { s: number; k: 'chg'; g: string; t: string; q: number; o: number; p: number; i: number };

type Change = JournalRecord extends infer R ? (R extends { s: number } ? Omit<R, 's'> : never) : never;

interface Snapshot {
  seq: number;
  queues: { g: string; t: string; q: number; n: number; leases: [number, number, number, number][] }[];
}

export interface PopRequest {
  group: string;
  topic: string;
  /** -1: every read queue of the topic. */
  queueId: number;
  maxMessages: number;
  invisibleTimeMs: number;
  filter: TagFilter;
  initMode: number;
}

export interface PoppedQueue {
  /** True for the group's pop retry topic. */
  retry: boolean;
  queueId: number;
  /** The queue's pop offset before this pop (ExtraInfoUtil's check-point start offset). */
  startOffset: number;
  queueOffsets: number[];
}

export interface PopResult {
  popTime: number;
  invisibleTimeMs: number;
  records: Buffer[];
  queues: PoppedQueue[];
  /** Messages left past the pop offsets of the queues read. */
  restNum: number;
}

export interface PopServiceOptions {
  store: () => MessageStore;
  topics: TopicConfigManager;
  offsets: ConsumerOffsetManager;
  configDir: string;
  maxReconsumeTimes: number;
  journalMaxBytes: number;
  flushIntervalMs: number;
}

function keyOf(group: string, topic: string, queueId: number): string {
  return `${group}\u0001${topic}\u0001${queueId}`;
}

export function isPopRetryTopic(topic: string): boolean {
  return topic.startsWith(RETRY_GROUP_TOPIC_PREFIX);
}

export class PopService {
  private readonly states = new Map<string, QueueState>();
  /** Every lease in flight by deadline (a lease leaves it when it ends or starts reviving). */
  private readonly due = new IndexedMinHeap<Lease>((a, b) => a.deadlineMs < b.deadlineMs);
  private readonly snapshotPath: string;
  private readonly journalPath: string;
  private readonly nextJournalPath: string;
  private journalFd: number | undefined;
  private journalBytes = 0;
  private journalDirty = false;
  /** The journal a running compaction will rename over the current one; gets every record too. */
  private nextJournalFd: number | undefined;
  private nextJournalBytes = 0;
  /** A journal was renamed into place: the next flush also fsyncs the directory. */
  private directoryDirty = false;
  private syncing: Promise<void> | undefined;
  private compacting: Promise<void> | undefined;
  private seq = 0;
  private lastPopTime = 0;
  private reviveTimer: NodeJS.Timeout | undefined;
  private armedForMs = Infinity;
  private reviving: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  private nextQueueStart = 0;

  constructor(private readonly options: PopServiceOptions) {
    this.snapshotPath = join(options.configDir, 'popState.json');
    this.journalPath = join(options.configDir, 'popState.journal');
    this.nextJournalPath = `${this.journalPath}.next`;
  }

  /** Leases in flight over all queues (tests, metrics). */
  get inflightCount(): number {
    let count = 0;
    for (const state of this.states.values()) count += state.leases.size;
    return count;
  }

  start(): void {
    const snapshot = readJsonFile<Snapshot>(this.snapshotPath);
    this.seq = snapshot?.seq ?? 0;
    for (const queue of snapshot?.queues ?? []) {
      const state = this.stateFor(queue.g, queue.t, queue.q, queue.n);
      for (const [queueOffset, commitLogOffset, popTime, invisibleTimeMs] of queue.leases) {
        this.addLease(state, queueOffset, commitLogOffset, popTime, invisibleTimeMs);
      }
    }
    this.replayJournal(snapshot?.seq ?? 0);
    this.compactSync();
    for (const state of this.states.values()) {
      for (const lease of state.leases.values()) this.lastPopTime = Math.max(this.lastPopTime, lease.popTime);
    }
    this.stopped = false;
    this.flushTimer = setInterval(() => this.flush(), this.options.flushIntervalMs);
    this.flushTimer.unref();
    this.armRevive();
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.flushTimer);
    clearTimeout(this.reviveTimer);
    this.reviveTimer = undefined;
    await this.reviving;
    while (this.compacting !== undefined) await this.compacting.catch(() => undefined);
    this.compacting = this.rotateJournal().finally(() => {
      this.compacting = undefined;
    });
    await this.compacting;
    while (this.syncing !== undefined) await this.syncing;
    const fd = this.journalFd;
    this.journalFd = undefined;
    if (fd !== undefined) {
      // Records that arrived while the last compaction ran, and the rename that put it in place.
      await fdatasyncAsync(fd);
      await closeAsync(fd);
      if (this.directoryDirty) await fsyncDirectoryAsync(dirname(this.journalPath));
      this.directoryDirty = false;
    }
    this.states.clear();
    this.due.clear();
  }

  /** Leases up to maxMessages messages of the topic's queues (and the group's pop retry topic). */
  pop(request: PopRequest): PopResult {
    const popTime = this.nextPopTime();
    const result: PopResult = {
      popTime,
      invisibleTimeMs: request.invisibleTimeMs,
      records: [],
      queues: [],
      restNum: 0,
    };
    const { topics } = this.options;
    const topicConfig = topics.get(request.topic);
    const retryTopic = popRetryTopicOf(request.group, request.topic);
    const normal: [string, number][] = [];
    if (topicConfig !== undefined) {
      if (request.queueId >= 0) normal.push([request.topic, request.queueId]);
      else {
        const count = topicConfig.readQueueNums;
        const start = count > 0 ? this.nextQueueStart++ % count : 0;
        for (let i = 0; i < count; i++) normal.push([request.topic, (start + i) % count]);
      }
    }
    const retry: [string, number][] = topics.get(retryTopic) === undefined ? [] : [[retryTopic, 0]];
    const order = Math.random() < RETRY_FIRST_RATIO ? [...retry, ...normal] : [...normal, ...retry];
    for (const [topic, queueId] of order) {
      const isRetry = topic === retryTopic;
      const remaining = request.maxMessages - result.records.length;
      if (remaining > 0) {
        this.popQueue(request, topic, queueId, isRetry, remaining, result);
      } else {
        const state = this.states.get(keyOf(request.group, topic, queueId));
        if (state !== undefined) {
          result.restNum += Math.max(0, this.store().getMaxOffsetInQueue(topic, queueId) - state.nextPopOffset);
        }
      }
    }
    return result;
  }

  /** Ends the lease the receipt handle names; false when it is unknown, stale or being revived. */
  ack(group: string, topic: string, queueId: number, queueOffset: number, popTime: number): boolean {
    const state = this.states.get(keyOf(group, topic, queueId));
    const lease = state?.leases.get(queueOffset);
    if (state === undefined || lease === undefined || lease.popTime !== popTime || lease.reviving) return false;
    this.record({ k: 'ack', g: group, t: topic, q: queueId, o: queueOffset });
    this.commitLowest(state);
    return true;
  }

  /**
   * Ends every lease of one queue that `acks` names with its current pop time, in one journal
   * record (BATCH_ACK_MESSAGE); unknown, stale or reviving ones are skipped. Returns how many ended.
   */
  ackMany(
    group: string,
    topic: string,
    queueId: number,
    acks: readonly { queueOffset: number; popTime: number }[],
  ): number {
    const state = this.states.get(keyOf(group, topic, queueId));
    if (state === undefined) return 0;
    const ended = new Set<number>();
    for (const { queueOffset, popTime } of acks) {
      const lease = state.leases.get(queueOffset);
      if (lease === undefined || lease.popTime !== popTime || lease.reviving) continue;
      ended.add(queueOffset);
    }
    if (ended.size === 0) return 0;
    this.record({ k: 'acks', g: group, t: topic, q: queueId, o: [...ended] });
    this.commitLowest(state);
    return ended.size;
  }

  /**
   * Gives the lease a new deadline `invisibleTimeMs` from now and a new pop time (the old receipt
   * handle stops working); undefined when the handle is unknown, stale or being revived.
   */
  changeInvisibleTime(
    group: string,
    topic: string,
    queueId: number,
    queueOffset: number,
    popTime: number,
    invisibleTimeMs: number,
  ): { popTime: number; invisibleTimeMs: number } | undefined {
    const lease = this.states.get(keyOf(group, topic, queueId))?.leases.get(queueOffset);
    if (lease === undefined || lease.popTime !== popTime || lease.reviving) return undefined;
    const newPopTime = this.nextPopTime();
    this.record({ k: 'chg', g: group, t: topic, q: queueId, o: queueOffset, p: newPopTime, i: invisibleTimeMs });
    this.armReviveBy(lease.deadlineMs);
    return { popTime: newPopTime, invisibleTimeMs };
  }

  /** Admin reset: the group pops the queue from `queueOffset` on; its leases there are dropped. */
  resetOffset(group: string, topic: string, queueId: number, queueOffset: number): void {
    if (this.stopped) return;
    const key = keyOf(group, topic, queueId);
    if (!this.states.has(key)) return;
    this.record({ k: 'reset', g: group, t: topic, q: queueId, n: queueOffset });
  }

  private store(): MessageStore {
    return this.options.store();
  }

  private nextPopTime(): number {
    this.lastPopTime = Math.max(Date.now(), this.lastPopTime + 1);
    return this.lastPopTime;
  }

  private stateFor(group: string, topic: string, queueId: number, nextPopOffset: number): QueueState {
    const key = keyOf(group, topic, queueId);
    let state = this.states.get(key);
    if (state === undefined) {
      state = { group, topic, queueId, nextPopOffset, leases: new OffsetTable() };
      this.states.set(key, state);
    }
    return state;
  }

  /** The queue's state, created at the group's committed offset or per initMode. */
  private existingOrNewState(group: string, topic: string, queueId: number, initMode: number): QueueState {
    const existing = this.states.get(keyOf(group, topic, queueId));
    if (existing !== undefined) return existing;
    const store = this.store();
    const committed = this.options.offsets.query(group, topic, queueId);
    const start =
      committed >= 0
        ? committed
        : initMode === ConsumeInitMode.Max
          ? store.getMaxOffsetInQueue(topic, queueId)
          : store.getMinOffsetInQueue(topic, queueId);
    this.record({ k: 'next', g: group, t: topic, q: queueId, n: start });
    return this.stateFor(group, topic, queueId, start);
  }

  private popQueue(
    request: PopRequest,
    topic: string,
    queueId: number,
    isRetry: boolean,
    maxMessages: number,
    result: PopResult,
  ): void {
    const store = this.store();
    const { group } = request;
    const state = this.existingOrNewState(group, topic, queueId, isRetry ? ConsumeInitMode.Min : request.initMode);
    const filter = isRetry ? ALL : request.filter;
    const read = () => store.getMessage({ topic, queueId, queueOffset: state.nextPopOffset, maxMessages, filter });
    let got = read();
    if (got.status !== GetStatus.Found && got.status !== GetStatus.NoMatchedMessage) {
      // Out of range (retention removed the head, or the queue was recreated): move into it.
      const fixed =
        state.nextPopOffset < got.minOffset
          ? got.minOffset
          : state.nextPopOffset > got.maxOffset
            ? got.maxOffset
            : undefined;
      if (fixed !== undefined) {
        this.record({ k: 'next', g: group, t: topic, q: queueId, n: fixed });
        got = read();
      }
    }
    const startOffset = state.nextPopOffset;
    if (got.status === GetStatus.Found && got.records.length > 0) {
      const commitLogOffsets = got.records.map((record) => Number(record.readBigInt64BE(Field.PhysicalOffset)));
      this.record({
        k: 'pop',
        g: group,
        t: topic,
        q: queueId,
        n: Math.max(got.nextBeginOffset, state.nextPopOffset),
        p: result.popTime,
        i: request.invisibleTimeMs,
        o: got.queueOffsets,
        c: commitLogOffsets,
      });
      this.armReviveBy(result.popTime + request.invisibleTimeMs);
      result.records.push(...got.records);
      result.queues.push({ retry: isRetry, queueId, startOffset, queueOffsets: got.queueOffsets });
    } else if (got.status === GetStatus.NoMatchedMessage && got.nextBeginOffset > state.nextPopOffset) {
      this.record({ k: 'next', g: group, t: topic, q: queueId, n: got.nextBeginOffset });
      this.commitLowest(state);
    }
    result.restNum += Math.max(0, got.maxOffset - state.nextPopOffset);
  }

  /** The group's committed offset follows the lowest offset still leased, or the pop offset. */
  private commitLowest(state: QueueState): void {
    const lowest = Math.min(state.leases.smallest() ?? Infinity, state.nextPopOffset);
    if (this.options.offsets.query(state.group, state.topic, state.queueId) !== lowest) {
      this.options.offsets.commit(state.group, state.topic, state.queueId, lowest);
    }
  }

  /** Applies a change to memory and appends it to the journal (the journal is the truth). */
  private record(change: Change): void {
    const record = { s: ++this.seq, ...change } as JournalRecord;
    this.apply(record);
    this.append(record);
  }

  private apply(record: JournalRecord): void {
    const state =
      this.states.get(keyOf(record.g, record.t, record.q)) ??
      this.stateFor(record.g, record.t, record.q, 'n' in record ? record.n : 0);
    switch (record.k) {
      case 'next':
        state.nextPopOffset = record.n;
        break;
      case 'reset':
        for (const lease of state.leases.values()) this.due.remove(lease);
        state.leases.clear();
        state.nextPopOffset = record.n;
        break;
      case 'pop':
        record.o.forEach((queueOffset, index) => {
          this.addLease(state, queueOffset, record.c[index] ?? -1, record.p, record.i);
        });
        state.nextPopOffset = Math.max(state.nextPopOffset, record.n);
        break;
      case 'ack':
        this.endLease(state, record.o);
        break;
      case 'acks':
        for (const queueOffset of record.o) this.endLease(state, queueOffset);
        break;
      case 'chg': {
        const lease = state.leases.get(record.o);
        if (lease !== undefined) {
          lease.popTime = record.p;
          lease.invisibleTimeMs = record.i;
          lease.deadlineMs = record.p + record.i;
          if (!lease.reviving) this.due.update(lease);
        }
        break;
      }
    }
  }

  private addLease(
    state: QueueState,
    queueOffset: number,
    commitLogOffset: number,
    popTime: number,
    invisibleTimeMs: number,
  ): void {
    this.endLease(state, queueOffset);
    const deadlineMs = popTime + invisibleTimeMs;
    const lease: Lease = {
      state,
      queueOffset,
      commitLogOffset,
      popTime,
      invisibleTimeMs,
      deadlineMs,
      reviving: false,
      heapIndex: -1,
    };
    state.leases.set(queueOffset, lease);
    this.due.push(lease);
  }

  private endLease(state: QueueState, queueOffset: number): void {
    const lease = state.leases.get(queueOffset);
    if (lease === undefined) return;
    state.leases.delete(queueOffset);
    this.due.remove(lease);
  }

  private append(record: JournalRecord): void {
    if (this.journalFd === undefined) return;
    const line = Buffer.from(JSON.stringify(record) + '\n', 'utf8');
    writeSync(this.journalFd, line);
    this.journalBytes += line.length;
    if (this.nextJournalFd !== undefined) {
      writeSync(this.nextJournalFd, line);
      this.nextJournalBytes += line.length;
    }
    this.journalDirty = true;
    if (this.journalBytes > this.options.journalMaxBytes && this.compacting === undefined && !this.stopped) {
      this.compacting = this.rotateJournal().finally(() => {
        this.compacting = undefined;
      });
      this.compacting.catch((err: unknown) => log.error({ err }, 'compacting the pop journal failed'));
    }
  }

  /** The timed fdatasync, on the thread pool; one at a time (see the header). */
  private flush(): void {
    if (!this.journalDirty || this.journalFd === undefined || this.syncing !== undefined) return;
    this.journalDirty = false;
    const fds = this.nextJournalFd === undefined ? [this.journalFd] : [this.journalFd, this.nextJournalFd];
    const directory = this.directoryDirty;
    this.directoryDirty = false;
    this.syncing = (async () => {
      await Promise.all(fds.map((fd) => fdatasyncAsync(fd)));
      if (directory) await fsyncDirectoryAsync(dirname(this.journalPath));
    })()
      .catch((err: unknown) => {
        if (directory) this.directoryDirty = true;
        log.error({ err }, 'syncing the pop journal failed');
      })
      .finally(() => {
        this.syncing = undefined;
      });
  }

  /** The snapshot as of now (seq included). */
  private snapshotJson(): string {
    const snapshot: Snapshot = { seq: this.seq, queues: [] };
    for (const state of this.states.values()) {
      snapshot.queues.push({
        g: state.group,
        t: state.topic,
        q: state.queueId,
        n: state.nextPopOffset,
        leases: state.leases
          .values()
          .map((lease) => [lease.queueOffset, lease.commitLogOffset, lease.popTime, lease.invisibleTimeMs]),
      });
    }
    return JSON.stringify(snapshot);
  }

  /** Compaction while serving, its disk work on the thread pool (see the header for the order). */
  private async rotateJournal(): Promise<void> {
    const nextFd = await openAsync(this.nextJournalPath, 'w');
    // Same tick: the snapshot holds every record up to seq, the next journal every one after it.
    const snapshot = this.snapshotJson();
    this.nextJournalFd = nextFd;
    this.nextJournalBytes = 0;
    try {
      await writeFileAtomicAsync(this.snapshotPath, snapshot);
      await rename(this.nextJournalPath, this.journalPath);
    } catch (err) {
      // The old journal still holds everything: keep appending there alone.
      this.nextJournalFd = undefined;
      while (this.syncing !== undefined) await this.syncing;
      await closeAsync(nextFd);
      throw err;
    }
    const oldFd = this.journalFd;
    this.journalFd = nextFd;
    this.journalBytes = this.nextJournalBytes;
    this.nextJournalFd = undefined;
    this.directoryDirty = true;
    this.journalDirty = true;
    while (this.syncing !== undefined) await this.syncing;
    if (oldFd !== undefined) await closeAsync(oldFd);
  }

  private replayJournal(snapshotSeq: number): void {
    let text: string;
    try {
      text = readFileSync(this.journalPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const lines = text.split('\n');
    for (const [index, line] of lines.entries()) {
      if (line.length === 0) continue;
      let record: JournalRecord;
      try {
        record = JSON.parse(line) as JournalRecord;
      } catch {
        if (index < lines.length - 1) log.warn({ line: index + 1 }, 'pop journal line unreadable: replay stops there');
        break;
      }
      if (typeof record.s !== 'number' || record.s <= snapshotSeq) continue;
      this.apply(record);
      this.seq = Math.max(this.seq, record.s);
    }
  }

  /** At start, before anything is served: writes the snapshot atomically, then starts an empty journal. */
  private compactSync(): void {
    writeFileAtomic(this.snapshotPath, this.snapshotJson());
    if (this.journalFd !== undefined) closeSync(this.journalFd);
    this.journalFd = openSync(this.journalPath, 'w');
    fdatasyncSync(this.journalFd);
    this.journalBytes = 0;
    this.journalDirty = false;
  }

  /** Re-arms the revive timer when a lease now runs out before the time it is armed for. */
  private armReviveBy(deadlineMs: number): void {
    if (deadlineMs < this.armedForMs) this.armRevive();
  }

  private armRevive(): void {
    if (this.stopped || this.reviving !== undefined) return;
    const next = this.due.peek();
    clearTimeout(this.reviveTimer);
    this.reviveTimer = undefined;
    if (next === undefined) {
      this.armedForMs = Infinity;
      return;
    }
    this.armedForMs = next.deadlineMs;
    this.reviveTimer = setTimeout(
      () => {
        this.reviveTimer = undefined;
        this.armedForMs = Infinity;
        this.reviving = this.reviveDue().finally(() => {
          this.reviving = undefined;
          this.armRevive();
        });
      },
      Math.max(0, next.deadlineMs - Date.now()),
    );
  }

  private async reviveDue(): Promise<void> {
    for (;;) {
      const lease = this.due.peek();
      if (this.stopped || lease === undefined || lease.deadlineMs > Date.now()) return;
      // Out of the heap while reviving: acks and deadline changes leave a reviving lease alone.
      this.due.remove(lease);
      lease.reviving = true;
      try {
        await this.revive(lease.state, lease);
      } catch (err) {
        log.error({ err }, 'reviving a pop lease failed');
        lease.reviving = false;
        lease.deadlineMs = Date.now() + RETRY_AFTER_FAILURE_MS;
        if (lease.state.leases.get(lease.queueOffset) === lease) this.due.push(lease);
      }
    }
  }

  /** Re-stores the leased message in the pop retry topic (or the DLQ), then ends the lease. */
  private async revive(state: QueueState, lease: Lease): Promise<void> {
    const store = this.store();
    const message = lease.commitLogOffset >= 0 ? store.lookMessageByOffset(lease.commitLogOffset) : undefined;
    if (message === undefined) {
      log.warn({ topic: state.topic, queueOffset: lease.queueOffset }, 'leased message is gone: lease dropped');
    } else {
      const toDlq = message.reconsumeTimes >= this.options.maxReconsumeTimes;
      const target = toDlq
        ? dlqTopicOf(state.group)
        : isPopRetryTopic(state.topic)
          ? state.topic
          : popRetryTopicOf(state.group, state.topic);
      await this.options.topics.ensureInternal(target, 1, PERM_READ_WRITE);
      const properties = userProperties(message);
      if (properties[MessageProperty.RetryTopic] === undefined) properties[MessageProperty.RetryTopic] = message.topic;
      if (properties[MessageProperty.OriginMessageId] === undefined) {
        properties[MessageProperty.OriginMessageId] =
          properties[MessageProperty.UniqueClientMessageId] ?? message.msgId;
      }
      const put = await store.putMessage(
        restoreAs(message, target, 0, properties, { reconsumeTimes: message.reconsumeTimes + 1 }),
      );
      if (put.status !== PutStatus.Ok && put.status !== PutStatus.FlushDiskTimeout) {
        throw new Error(`re-storing a popped message failed: ${put.status}`);
      }
      if (toDlq) log.info({ group: state.group, topic: state.topic }, 'popped message moved to the DLQ');
    }
    // Recorded even while shutting down: shutdown waits for this and compacts afterwards.
    this.record({ k: 'ack', g: state.group, t: state.topic, q: state.queueId, o: lease.queueOffset });
    this.commitLowest(state);
  }
}
