/**
 * Delay levels (RocketMQ ScheduleMessageService). A send carrying DELAY = L (1..N) is stored in
 * SCHEDULE_TOPIC_XXXX queue L-1 with its destination in REAL_TOPIC / REAL_QID. Every message of a
 * level waits the same time, so each level's queue is due in queue order: one loop per level reads
 * from its delivery offset, re-stores each message whose storeTimestamp + delay has passed into its
 * real topic and queue (DELAY removed), and arms one timer for the first message not yet due. New
 * arrivals (the store's listener) wake an idle loop.
 *
 * Durability: the next queue offset to deliver per level lives in `config/delayOffset.json`
 * (RocketMQ's shape, {"offsetTable":{"1":12}}), written atomically (on the thread pool, one write at a
 * time) after every delivered batch and at shutdown; the next batch waits for it. A message is
 * re-stored before its offset is recorded, so a crash can re-deliver at most the batch in flight, and
 * a clean restart neither loses nor repeats anything.
 */
import { join } from 'node:path';
import { createLogger } from '../common/logger.js';
import type { MessageToStore, StoredMessage } from '../common/message.js';
import { decodeRecord } from '../common/message-record.js';
import { MessageProperty } from '../common/properties.js';
import { parseTagExpression } from '../common/tag-expression.js';
import { SCHEDULE_TOPIC } from '../common/topic.js';
import { GetStatus, PutStatus, type MessageStore } from '../store/api.js';
import { writeFileAtomicAsync } from '../common/atomic-file.js';
import { readLenientJsonFile } from './lenient-json.js';
import { restoreAs, userProperties } from './system-message.js';

const log = createLogger('schedule');
const ALL = parseTagExpression('*');
const BATCH_MESSAGES = 32;
/** After a failed put the level retries after this long (RocketMQ DELAY_FOR_A_PERIOD, 10 s; shorter here). */
const RETRY_AFTER_FAILURE_MS = 1000;

interface LevelState {
  readonly level: number;
  readonly delayMs: number;
  /** Next queue offset of SCHEDULE_TOPIC_XXXX queue level-1 to deliver. */
  queueOffset: number;
  running: boolean;
  /** An arrival came while running: run once more. */
  again: boolean;
  /** Offsets above queueOffset already re-stored (an older one failed): skipped on the retry. */
  readonly deliveredAhead: Set<number>;
  timer: NodeJS.Timeout | undefined;
}

export class ScheduleMessageService {
  private readonly levels: LevelState[];
  private readonly path: string;
  private stopped = true;
  private readonly passes = new Set<Promise<void>>();
  /** The last delayOffset.json write in line, and the one not yet started (callers share it). */
  private persistTail: Promise<void> = Promise.resolve();
  private persistQueued: Promise<void> | undefined;

  constructor(
    private readonly store: () => MessageStore,
    configDir: string,
    levelsMs: readonly number[],
  ) {
    this.path = join(configDir, 'delayOffset.json');
    this.levels = levelsMs.map((delayMs, index) => ({
      level: index + 1,
      delayMs,
      queueOffset: 0,
      running: false,
      again: false,
      deliveredAhead: new Set<number>(),
      timer: undefined,
    }));
  }

  get maxLevel(): number {
    return this.levels.length;
  }

  /** The delay of a level, capped to the highest level as RocketMQ does. */
  delayOfLevel(level: number): number {
    const state = this.levels[Math.min(level, this.levels.length) - 1];
    return state?.delayMs ?? 0;
  }

  /**
   * Rewrites a message bound for its topic into the schedule topic (RocketMQ CommitLog.putMessage's
   * delay branch). Levels above the highest are capped to it.
   */
  divert(message: MessageToStore, level: number): MessageToStore {
    const capped = Math.min(level, this.levels.length);
    return {
      ...message,
      topic: SCHEDULE_TOPIC,
      queueId: capped - 1,
      properties: {
        ...message.properties,
        [MessageProperty.DelayTimeLevel]: String(capped),
        [MessageProperty.RealTopic]: message.topic,
        [MessageProperty.RealQueueId]: String(message.queueId),
      },
    };
  }

  /** Loads the delivery offsets and starts every level's loop. */
  start(): void {
    const stored = readLenientJsonFile(this.path) as { offsetTable?: Record<string, unknown> } | undefined;
    for (const state of this.levels) {
      const value = stored?.offsetTable?.[String(state.level)];
      if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) state.queueOffset = value;
    }
    this.stopped = false;
    for (const state of this.levels) this.run(state);
  }

  /** The store's arrival listener: a message reached SCHEDULE_TOPIC_XXXX queue `queueId`. */
  notifyArrival(queueId: number): void {
    const state = this.levels[queueId];
    if (state === undefined || this.stopped) return;
    // An armed timer waits for an older message of the level, which is due first.
    if (state.timer === undefined) this.run(state);
  }

  /** Stops the timers, waits for deliveries in flight and records the offsets. */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const state of this.levels) {
      clearTimeout(state.timer);
      state.timer = undefined;
    }
    await Promise.allSettled([...this.passes]);
    await this.persist();
  }

  private run(state: LevelState): void {
    if (state.running) {
      state.again = true;
      return;
    }
    state.running = true;
    const pass = this.deliverDue(state)
      .catch((err: unknown) => {
        log.error({ err, level: state.level }, 'delivering delayed messages failed');
        this.arm(state, RETRY_AFTER_FAILURE_MS);
      })
      .finally(() => {
        state.running = false;
        this.passes.delete(pass);
        if (state.again && !this.stopped && state.timer === undefined) {
          state.again = false;
          this.run(state);
        }
      });
    this.passes.add(pass);
  }

  private arm(state: LevelState, waitMs: number): void {
    if (this.stopped) return;
    clearTimeout(state.timer);
    state.timer = setTimeout(
      () => {
        state.timer = undefined;
        this.run(state);
      },
      Math.max(0, waitMs),
    );
  }

  /**
   * Delivers every due message of the level; arms the timer for the first one not due. The puts of
   * one read batch are issued together (each appends when issued, so a real queue keeps the level's
   * order) and awaited at once; the delivery offset then moves over the delivered prefix and is
   * persisted before the next batch.
   */
  private async deliverDue(state: LevelState): Promise<void> {
    state.again = false;
    const store = this.store();
    let persistedOffset = state.queueOffset;
    try {
      for (;;) {
        if (this.stopped) return;
        const result = store.getMessage({
          topic: SCHEDULE_TOPIC,
          queueId: state.level - 1,
          queueOffset: state.queueOffset,
          maxMessages: BATCH_MESSAGES,
          filter: ALL,
        });
        if (result.status === GetStatus.OffsetTooSmall) {
          log.warn({ level: state.level, from: state.queueOffset, to: result.minOffset }, 'delayed messages expired');
          state.queueOffset = result.minOffset;
          continue;
        }
        if (result.status !== GetStatus.Found && state.queueOffset > result.maxOffset) {
          // The store lost its unflushed tail in a crash: new messages reuse those offsets.
          log.warn(
            { level: state.level, from: state.queueOffset, to: result.maxOffset },
            'delay offset past the queue',
          );
          state.queueOffset = result.maxOffset;
          continue;
        }
        if (result.status !== GetStatus.Found) return;
        const deliveries: { queueOffset: number; delivered: Promise<boolean> }[] = [];
        let waitMs = 0;
        for (const record of result.records) {
          const message = decodeRecord(record, 0, { copyBody: true });
          waitMs = message.storeTimestamp + state.delayMs - Date.now();
          if (waitMs > 0) break;
          deliveries.push({ queueOffset: message.queueOffset, delivered: this.deliver(store, state, message) });
        }
        let failed = false;
        for (const { queueOffset, delivered } of deliveries) {
          if (!(await delivered)) failed = true;
          else if (failed) state.deliveredAhead.add(queueOffset);
          else state.queueOffset = queueOffset + 1;
        }
        const whole = !failed && waitMs <= 0;
        if (whole && result.nextBeginOffset > state.queueOffset) state.queueOffset = result.nextBeginOffset;
        for (const queueOffset of state.deliveredAhead) {
          if (queueOffset < state.queueOffset) state.deliveredAhead.delete(queueOffset);
        }
        if (state.queueOffset !== persistedOffset) {
          persistedOffset = state.queueOffset;
          await this.persist();
        }
        if (failed) {
          this.arm(state, RETRY_AFTER_FAILURE_MS);
          return;
        }
        if (waitMs > 0) {
          this.arm(state, waitMs);
          return;
        }
      }
    } finally {
      if (state.queueOffset !== persistedOffset) await this.persist();
    }
  }

  /**
   * Re-stores one due message (its append runs before the first await); true when it is delivered,
   * was delivered already by an earlier pass, or is dropped as unroutable. Never rejects.
   */
  private async deliver(store: MessageStore, state: LevelState, message: StoredMessage): Promise<boolean> {
    // Delivered while an older message of the level failed: the retry must not repeat it.
    if (state.deliveredAhead.has(message.queueOffset)) return true;
    const realTopic = message.properties[MessageProperty.RealTopic];
    const realQueueId = Number(message.properties[MessageProperty.RealQueueId]);
    if (realTopic === undefined || !Number.isInteger(realQueueId)) {
      log.warn({ level: state.level, queueOffset: message.queueOffset }, 'delayed message without REAL_TOPIC');
      return true;
    }
    try {
      const properties = userProperties(message);
      delete properties[MessageProperty.DelayTimeLevel];
      const put = await store.putMessage(restoreAs(message, realTopic, realQueueId, properties));
      if (put.status === PutStatus.Ok || put.status === PutStatus.FlushDiskTimeout) return true;
      log.warn({ level: state.level, status: put.status }, 're-storing a delayed message failed');
    } catch (err) {
      log.error({ err, level: state.level }, 're-storing a delayed message failed');
    }
    return false;
  }

  /**
   * Resolves once delayOffset.json holds the offsets as they are now or later. One write at a time
   * (they share the temp file), on the thread pool; callers arriving while one waits to start share it.
   */
  private persist(): Promise<void> {
    if (this.persistQueued !== undefined) return this.persistQueued;
    const write = this.persistTail.then(() => {
      this.persistQueued = undefined;
      return this.writeOffsets();
    });
    this.persistQueued = write;
    this.persistTail = write;
    return write;
  }

  /** Never rejects: a failed write is logged and the next delivered batch writes again. */
  private async writeOffsets(): Promise<void> {
    const offsetTable: Record<string, number> = {};
    for (const state of this.levels) offsetTable[String(state.level)] = state.queueOffset;
    try {
      await writeFileAtomicAsync(this.path, JSON.stringify({ offsetTable }, null, 2));
    } catch (err) {
      log.error({ err }, 'writing delayOffset.json failed');
    }
  }
}
