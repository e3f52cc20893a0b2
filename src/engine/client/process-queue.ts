/**
 * The messages of one queue that a push consumer has pulled and not yet finished (RocketMQ
 * ProcessQueue). The offset a consumer may commit is the smallest unfinished queue offset, or one
 * past the largest pulled when all are finished, so a crash never skips an unprocessed message.
 */
import { OffsetTable } from '../common/churn-map.js';
import type { MessageExt } from './message-ext.js';
import type { MessageQueue } from './route.js';

export class ProcessQueue {
  /** Set when the queue is released in a rebalance: the pull loop stops, offsets are no longer committed. */
  dropped = false;
  /** Unfinished messages by queue offset, knowing the smallest (one comes and goes per message). */
  private readonly inflight = new OffsetTable<MessageExt>();
  private largestQueueOffset = -1;
  private spaceWaiters: (() => void)[] = [];
  readonly abort = new AbortController();
  /** Orderly consumption: whether this member holds the queue's lock at the broker, and since when. */
  locked = false;
  lastLockMs = 0;
  /** Orderly consumption: the running consume loop of this queue, if any (one handler call at a time). */
  consuming: Promise<void> | undefined;

  constructor(
    readonly queue: MessageQueue,
    /** The next queue offset to pull. */
    public nextPullOffset: number,
  ) {}

  get count(): number {
    return this.inflight.size;
  }

  put(messages: readonly MessageExt[]): void {
    for (const message of messages) {
      if (message.queueOffset <= this.largestQueueOffset) continue;
      this.inflight.set(message.queueOffset, message);
      this.largestQueueOffset = message.queueOffset;
    }
  }

  /** The unfinished message with the smallest queue offset. */
  first(): MessageExt | undefined {
    return this.smallestUnfinished();
  }

  /** Whether the lock is held and was renewed within `maxLiveMs`. */
  lockValid(nowMs: number, maxLiveMs: number): boolean {
    return this.locked && nowMs - this.lastLockMs <= maxLiveMs;
  }

  /** Marks messages finished; returns the queue offset now safe to commit, or -1 if nothing was ever pulled. */
  remove(messages: readonly MessageExt[]): number {
    for (const message of messages) this.inflight.delete(message.queueOffset);
    for (const wake of this.spaceWaiters.splice(0)) wake();
    if (this.largestQueueOffset < 0) return -1;
    const smallest = this.smallestUnfinished();
    return smallest === undefined ? this.largestQueueOffset + 1 : smallest.queueOffset;
  }

  private smallestUnfinished(): MessageExt | undefined {
    const offset = this.inflight.smallest();
    return offset === undefined ? undefined : this.inflight.get(offset);
  }

  /** Resolves when a message finishes, the queue is dropped or `maxWaitMs` passes. */
  waitForSpace(maxWaitMs: number): Promise<void> {
    const signal = this.abort.signal;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, maxWaitMs);
      signal.addEventListener('abort', done, { once: true });
      this.spaceWaiters.push(done);
    });
  }

  drop(): void {
    this.dropped = true;
    this.abort.abort();
    for (const wake of this.spaceWaiters.splice(0)) wake();
  }
}
