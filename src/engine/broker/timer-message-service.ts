/**
 * Arbitrary delivery times (RocketMQ 5 timer messages). A send carrying TIMER_DELIVER_MS (epoch ms),
 * TIMER_DELAY_SEC or TIMER_DELAY_MS is stored in the system topic `rmq_sys_wheel_timer` queue 0 with
 * its destination in REAL_TOPIC / REAL_QID and the absolute time in TIMER_DELIVER_MS; a time in the
 * past is stored straight into its topic, one beyond `timerMaxDelayMs` is refused (MESSAGE_ILLEGAL).
 *
 * Design (ours, not RocketMQ's timing wheel files): the pending messages sit in a min-heap by
 * delivery time, and one timer is armed for the earliest. A due message is read back by CommitLog
 * offset and re-stored into its real topic and queue.
 *
 * Durability. Two files under config/:
 * - `timerCheckpoint.json` {"lowestPendingOffset": X}: every timer-topic message below queue offset X
 *   is delivered (written atomically when X moves);
 * - `timerDelivered.log`: append-only 8-byte big-endian queue offsets of messages delivered at or above
 *   X (delivery order is not queue order). Rewritten atomically without the entries below X when it
 *   holds mostly those.
 * Rolling (RocketMQ's timer rolls too): CommitLog retention deletes segments older than
 * fileReservedMs whatever they hold, so a message waiting longer than `rollAfterMs` (a third of
 * that, at most a day) is stored again in the timer topic, with TIMER_ROLL_TIMES counting, and its
 * old copy counts as delivered. A pending message's record is therefore never older than retention
 * allows, and neither is the lowest pending offset the start scan begins at.
 * Due messages are re-stored with up to 64 puts in flight. A message counts as delivered only once
 * its put succeeded; one recorder at a time then appends its offset, fdatasyncs the log and moves the
 * checkpoint over the contiguous delivered prefix, all on the thread pool. A crash repeats at most the
 * deliveries in flight or not yet in the log (bounded); a clean restart repeats nothing. At start the
 * heap is rebuilt by scanning the timer queue from X, skipping the offsets in the log. Memory is one heap entry per pending message.
 */
import { close, closeSync, fdatasync, open, openSync, readFileSync, write } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../common/logger.js';
import { ChurnMap } from '../common/churn-map.js';
import type { MessageToStore } from '../common/message.js';
import { decodeRecord } from '../common/message-record.js';
import { MessageProperty } from '../common/properties.js';
import { parseTagExpression } from '../common/tag-expression.js';
import { ResponseCode } from '../remoting/codes.js';
import { GetStatus, PutStatus, type MessageStore } from '../store/api.js';
import { readJsonFile, writeFileAtomic, writeFileAtomicAsync } from '../common/atomic-file.js';
import { type HeapPositioned, IndexedMinHeap } from './min-heap.js';
import { RequestError } from './request-error.js';
import { restoreAs, userProperties } from './system-message.js';

/** RocketMQ TimerMessageStore.TIMER_TOPIC. */
export const TIMER_TOPIC = 'rmq_sys_wheel_timer';
/** MessageConst.PROPERTY_TIMER_DELAY_MS. */
const TIMER_DELAY_MS = 'TIMER_DELAY_MS';
const log = createLogger('timer');
const ALL = parseTagExpression('*');
const SCAN_BATCH = 256;
const RETRY_AFTER_FAILURE_MS = 1000;
const OFFSET_BYTES = 8;
/** Puts awaiting their flush at once: one at a time falls behind a steady stream of due messages. */
const MAX_PUTS_IN_FLIGHT = 64;
/**
 * Delivered but not yet handed to the log: these repeat after a crash (as the former groups of 64
 * did), so at this many the pass waits for the log.
 */
const MAX_UNLOGGED = 64;
const writeAsync = promisify(write);
const fdatasyncAsync = promisify(fdatasync);
const openAsync = promisify(open);
const closeAsync = promisify(close);

interface Pending extends HeapPositioned {
  deliverMs: number;
  queueOffset: number;
  commitLogOffset: number;
  /** When the pass must look at it: its delivery time, its roll time, or a retry after a failure. */
  wakeMs: number;
}

/** MessageConst.PROPERTY_TIMER_ROLL_TIMES: how often a waiting message was stored again. */
const TIMER_ROLL_TIMES = 'TIMER_ROLL_TIMES';

/** The absolute delivery time a send asks for, or undefined when it asks for none. */
export function requestedDeliverMs(properties: Readonly<Record<string, string>>, nowMs: number): number | undefined {
  const at = properties[MessageProperty.TimerDeliverMs];
  const delaySec = properties[MessageProperty.TimerDelaySec];
  const delayMs = properties[TIMER_DELAY_MS];
  if (at !== undefined) return timerInteger(at, MessageProperty.TimerDeliverMs);
  if (delaySec !== undefined) return nowMs + timerInteger(delaySec, MessageProperty.TimerDelaySec) * 1000;
  if (delayMs !== undefined) return nowMs + timerInteger(delayMs, TIMER_DELAY_MS);
  return undefined;
}

/** A timer property's integer (a module function: every send asks requestedDeliverMs). */
function timerInteger(text: string, name: string): number {
  if (!/^-?\d{1,16}$/.test(text.trim())) {
    throw new RequestError(ResponseCode.MessageIllegal, `property ${name} "${text}" is not an integer`);
  }
  return Number(text.trim());
}

export class TimerMessageService {
  private readonly heap = new IndexedMinHeap<Pending>((a, b) => a.wakeMs < b.wakeMs);
  /** By queue offset; a ChurnMap because an entry comes and goes per message (see churn-map.ts). */
  private readonly pending = new ChurnMap<number, Pending>();
  /** Delivered offsets at or above lowestPendingOffset. */
  private readonly deliveredAbove = new Set<number>();
  private lowestPendingOffset = 0;
  private persistedLowest = -1;
  private logEntries = 0;
  /** The timer queue's end when start() scanned it: offsets below it that are not pending are done. */
  private scannedEnd = 0;
  private logFd: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private armedForMs = Infinity;
  private running: Promise<void> | undefined;
  /** Delivered offsets not yet appended to the log, in delivery order. */
  private readonly unlogged: number[] = [];
  /** The recorder chain (log append + fdatasync, checkpoint, log rewrite) while it runs. */
  private recording: Promise<void> | undefined;
  private stopped = true;
  private readonly checkpointPath: string;
  private readonly logPath: string;

  constructor(
    private readonly store: () => MessageStore,
    configDir: string,
    private readonly maxDelayMs: number,
    /** A message stored this long ago and not yet due is stored again (see the header). */
    private readonly rollAfterMs: number,
  ) {
    this.checkpointPath = join(configDir, 'timerCheckpoint.json');
    this.logPath = join(configDir, 'timerDelivered.log');
  }

  /** Messages waiting for their time. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Rewrites a send that asks for a delivery time into the timer topic; returns the message
   * unchanged when the time has come already. Throws MESSAGE_ILLEGAL beyond the horizon.
   */
  divert(message: MessageToStore, deliverMs: number, nowMs: number): MessageToStore {
    if (deliverMs - nowMs > this.maxDelayMs) {
      throw new RequestError(
        ResponseCode.MessageIllegal,
        `timer message delivery time ${deliverMs} is more than ${this.maxDelayMs} ms ahead`,
      );
    }
    const properties = { ...message.properties };
    delete properties[MessageProperty.TimerDelaySec];
    delete properties[TIMER_DELAY_MS];
    if (deliverMs <= nowMs) {
      delete properties[MessageProperty.TimerDeliverMs];
      return { ...message, properties };
    }
    properties[MessageProperty.TimerDeliverMs] = String(deliverMs);
    properties[MessageProperty.RealTopic] = message.topic;
    properties[MessageProperty.RealQueueId] = String(message.queueId);
    return { ...message, topic: TIMER_TOPIC, queueId: 0, properties };
  }

  /** After a diverted send was stored (at `storedAtMs`): it joins the heap. */
  track(deliverMs: number, queueOffset: number, commitLogOffset: number, storedAtMs = Date.now()): void {
    if (this.stopped || this.pending.has(queueOffset) || queueOffset < this.lowestPendingOffset) return;
    if (this.deliveredAbove.has(queueOffset)) return;
    const wakeMs = Math.min(deliverMs, storedAtMs + this.rollAfterMs);
    const entry: Pending = { deliverMs, queueOffset, commitLogOffset, wakeMs, heapIndex: -1 };
    this.pending.set(queueOffset, entry);
    this.heap.push(entry);
    if (wakeMs < this.armedForMs) this.arm();
  }

  /** Loads the checkpoint and the delivered log, scans the timer queue and arms the timer. */
  start(): void {
    const store = this.store();
    const checkpoint = readJsonFile<{ lowestPendingOffset?: number }>(this.checkpointPath);
    const minOffset = store.getMinOffsetInQueue(TIMER_TOPIC, 0);
    const maxOffset = store.getMaxOffsetInQueue(TIMER_TOPIC, 0);
    // Past the queue's end only after the store lost an unflushed tail; those offsets get reused.
    this.lowestPendingOffset = Math.min(maxOffset, Math.max(minOffset, checkpoint?.lowestPendingOffset ?? 0));
    this.persistedLowest = checkpoint?.lowestPendingOffset ?? -1;
    this.loadDeliveredLog(maxOffset);
    this.stopped = false;
    this.scannedEnd = maxOffset;
    let queueOffset = this.lowestPendingOffset;
    for (;;) {
      const result = store.getMessage({
        topic: TIMER_TOPIC,
        queueId: 0,
        queueOffset,
        maxMessages: SCAN_BATCH,
        filter: ALL,
      });
      if (result.status !== GetStatus.Found) break;
      for (const record of result.records) {
        const message = decodeRecord(record);
        const deliverMs = Number(message.properties[MessageProperty.TimerDeliverMs]);
        if (!Number.isFinite(deliverMs)) continue;
        this.track(deliverMs, message.queueOffset, message.commitLogOffset, message.storeTimestamp);
      }
      queueOffset = result.nextBeginOffset;
    }
    this.advanceLowest(store.getMaxOffsetInQueue(TIMER_TOPIC, 0));
    if (this.lowestPendingOffset !== this.persistedLowest) this.persistCheckpoint();
    if (this.logBloated()) this.rewriteLog();
    this.arm();
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    // The recorder drains every delivery the pass made; a chain may start another as it ends.
    while (this.recording !== undefined) await this.recording;
    await this.persistCheckpointAsync();
    if (this.logFd !== undefined) {
      const fd = this.logFd;
      this.logFd = undefined;
      await fdatasyncAsync(fd);
      await closeAsync(fd);
    }
    this.heap.clear();
    this.pending.clear();
  }

  private loadDeliveredLog(maxOffset: number): void {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.logPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      bytes = Buffer.alloc(0);
    }
    // A torn tail (crash mid-append) is ignored: that delivery may repeat once.
    const whole = bytes.length - (bytes.length % OFFSET_BYTES);
    for (let at = 0; at < whole; at += OFFSET_BYTES) {
      const queueOffset = Number(bytes.readBigInt64BE(at));
      if (queueOffset >= this.lowestPendingOffset && queueOffset < maxOffset) this.deliveredAbove.add(queueOffset);
    }
    this.rewriteLog();
  }

  /** At start: writes the log afresh with only the entries at or above the lowest pending offset. */
  private rewriteLog(): void {
    if (this.logFd !== undefined) closeSync(this.logFd);
    const entries = [...this.deliveredAbove];
    writeFileAtomic(this.logPath, encodeOffsets(entries));
    this.logEntries = entries.length;
    this.logFd = openSync(this.logPath, 'a');
  }

  /**
   * rewriteLog for the recorder, which appends nothing meanwhile. Entries delivered after the snapshot
   * are still unlogged and get appended to the new file; one in both is a harmless duplicate.
   */
  private async rewriteLogAsync(): Promise<void> {
    const entries = [...this.deliveredAbove];
    await writeFileAtomicAsync(this.logPath, encodeOffsets(entries));
    const oldFd = this.logFd;
    // Until the new file is open there is no fd: appends to the replaced file would be lost.
    this.logFd = undefined;
    if (oldFd !== undefined) await closeAsync(oldFd);
    this.logFd = await openAsync(this.logPath, 'a');
    this.logEntries = entries.length;
  }

  private arm(): void {
    if (this.stopped) return;
    const next = this.heap.peek();
    if (next === undefined) {
      this.armedForMs = Infinity;
      return;
    }
    if (this.running !== undefined) return; // the running pass re-arms when it ends
    clearTimeout(this.timer);
    this.armedForMs = next.wakeMs;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.armedForMs = Infinity;
        this.running = this.deliverDue().finally(() => {
          this.running = undefined;
          this.arm();
        });
      },
      Math.max(0, next.wakeMs - Date.now()),
    );
  }

  /**
   * Re-stores the due messages in heap order with up to MAX_PUTS_IN_FLIGHT puts awaiting their flush
   * at once; each put's append happens synchronously when it is issued, so a real queue receives
   * them in due order. The pass ends when nothing is due and no put is in flight, or after a failure.
   */
  private async deliverDue(): Promise<void> {
    const store = this.store();
    const puts = new Set<Promise<void>>();
    let failed = false;
    try {
      for (;;) {
        if (this.stopped || failed) return;
        if (puts.size >= MAX_PUTS_IN_FLIGHT) {
          await Promise.race(puts);
          continue;
        }
        // Deliveries not yet in the log repeat after a crash: keep their number bounded.
        if (this.unlogged.length >= MAX_UNLOGGED && this.recording !== undefined) {
          await this.recording;
          continue;
        }
        const next = this.heap.peek();
        if (next === undefined || next.wakeMs > Date.now()) {
          if (puts.size === 0) return;
          // Messages falling due while puts complete join this pass rather than wait for the next.
          await Promise.race(puts);
          continue;
        }
        this.heap.pop();
        if (this.pending.get(next.queueOffset) !== next) continue;
        const put = this.deliver(store, next).then((ok) => {
          if (!ok) failed = true;
          puts.delete(put);
        });
        puts.add(put);
      }
    } finally {
      await Promise.all(puts);
    }
  }

  /**
   * Re-stores one due message (the append runs before the first await); true when it is delivered
   * or dropped as unreadable, false when it goes back to the heap for a retry. Never rejects.
   */
  private async deliver(store: MessageStore, entry: Pending): Promise<boolean> {
    try {
      const message = store.lookMessageByOffset(entry.commitLogOffset);
      const realTopic = message?.properties[MessageProperty.RealTopic];
      const realQueueId = Number(message?.properties[MessageProperty.RealQueueId]);
      if (message === undefined || realTopic === undefined || !Number.isInteger(realQueueId)) {
        log.warn({ queueOffset: entry.queueOffset }, 'timer message is gone or has no REAL_TOPIC: dropped');
      } else if (entry.deliverMs > Date.now()) {
        // Not due, but stored long ago: store it again before retention can delete it.
        const properties = userProperties(message);
        properties[TIMER_ROLL_TIMES] = String(Number(properties[TIMER_ROLL_TIMES] ?? 0) + 1);
        const put = await store.putMessage(restoreAs(message, TIMER_TOPIC, 0, properties));
        if (put.status !== PutStatus.Ok && put.status !== PutStatus.FlushDiskTimeout) {
          log.warn({ status: put.status }, 'rolling a timer message failed; retrying');
          this.retryLater(entry);
          return false;
        }
        this.track(entry.deliverMs, put.queueOffset, put.commitLogOffset, put.storeTimestamp);
      } else {
        const put = await store.putMessage(restoreAs(message, realTopic, realQueueId, userProperties(message)));
        if (put.status !== PutStatus.Ok && put.status !== PutStatus.FlushDiskTimeout) {
          log.warn({ status: put.status }, 're-storing a timer message failed; retrying');
          this.retryLater(entry);
          return false;
        }
      }
    } catch (err) {
      log.error({ err, queueOffset: entry.queueOffset }, 'delivering a timer message failed; retrying');
      this.retryLater(entry);
      return false;
    }
    // Only now, after its put succeeded, does the message count as delivered.
    this.pending.delete(entry.queueOffset);
    this.deliveredAbove.add(entry.queueOffset);
    this.unlogged.push(entry.queueOffset);
    this.recordSoon();
    return true;
  }

  private retryLater(entry: Pending): void {
    entry.wakeMs = Date.now() + RETRY_AFTER_FAILURE_MS;
    if (!this.stopped) this.heap.push(entry);
  }

  /**
   * Starts the recorder unless it runs: one chain at a time appends, fdatasyncs, moves the checkpoint
   * and rewrites the log, all on the thread pool, so no two of them overlap and puts go on meanwhile.
   */
  private recordSoon(): void {
    if (this.recording !== undefined || this.unlogged.length === 0 || this.logFd === undefined) return;
    this.recording = this.recordDelivered().finally(() => {
      this.recording = undefined;
      // Deliveries that arrived after the chain's last look.
      this.recordSoon();
    });
  }

  /** Appends the delivered offsets to the log, syncs it, then moves and persists the checkpoint. */
  private async recordDelivered(): Promise<void> {
    while (this.unlogged.length > 0 && this.logFd !== undefined) {
      const queueOffsets = this.unlogged.splice(0);
      try {
        await writeFully(this.logFd, encodeOffsets(queueOffsets));
        await fdatasyncAsync(this.logFd);
        this.logEntries += queueOffsets.length;
        this.advanceLowest(this.store().getMaxOffsetInQueue(TIMER_TOPIC, 0));
        if (this.lowestPendingOffset !== this.persistedLowest) await this.persistCheckpointAsync();
        if (this.logBloated()) await this.rewriteLogAsync();
      } catch (err) {
        log.error({ err }, 'recording timer deliveries failed');
      }
    }
  }

  /** Moves the lowest pending offset over delivered ones (never past `limit`, the queue's end). */
  private advanceLowest(limit: number): void {
    while (this.lowestPendingOffset < limit && !this.pending.has(this.lowestPendingOffset)) {
      if (!this.deliveredAbove.delete(this.lowestPendingOffset) && !this.isScanned(this.lowestPendingOffset)) break;
      this.lowestPendingOffset++;
    }
  }

  /** The log holds mostly entries below the lowest pending offset. */
  private logBloated(): boolean {
    return this.logEntries > 4 * this.deliveredAbove.size + 4096;
  }

  /**
   * True for an offset below the queue's end that is neither pending nor delivered: a timer message
   * that could not be read (dropped). Offsets of sends still being stored are above the known end.
   */
  private isScanned(queueOffset: number): boolean {
    return queueOffset < this.scannedEnd;
  }

  /** At start only: the event loop serves nothing yet. */
  private persistCheckpoint(): void {
    try {
      writeFileAtomic(this.checkpointPath, JSON.stringify({ lowestPendingOffset: this.lowestPendingOffset }));
      this.persistedLowest = this.lowestPendingOffset;
    } catch (err) {
      log.error({ err }, 'writing timerCheckpoint.json failed');
    }
  }

  /** Run by the recorder or by shutdown after it, never two at once (they share the temp file). */
  private async persistCheckpointAsync(): Promise<void> {
    const lowestPendingOffset = this.lowestPendingOffset;
    try {
      await writeFileAtomicAsync(this.checkpointPath, JSON.stringify({ lowestPendingOffset }));
      this.persistedLowest = lowestPendingOffset;
    } catch (err) {
      log.error({ err }, 'writing timerCheckpoint.json failed');
    }
  }
}

/** 8-byte big-endian queue offsets, the delivered log's entry format. */
function encodeOffsets(queueOffsets: readonly number[]): Buffer {
  const bytes = Buffer.alloc(queueOffsets.length * OFFSET_BYTES);
  queueOffsets.forEach((queueOffset, index) => bytes.writeBigInt64BE(BigInt(queueOffset), index * OFFSET_BYTES));
  return bytes;
}

async function writeFully(fd: number, bytes: Buffer): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await writeAsync(fd, bytes, written, bytes.length - written);
    written += bytesWritten;
  }
}
