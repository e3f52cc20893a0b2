/**
 * Flushing and the puts that wait for it (RocketMQ GroupCommitService and FlushRealTimeService).
 *
 * Every put registers a waiter with the CommitLog offset its records end at. Under the async policy a
 * waiter is done once the bytes reach the file (writtenOffset); under the sync policy once an
 * fdatasync covers them (flushedOffset). Group commit: one fdatasync at a time, on the thread pool;
 * when it completes it wakes every waiter at or below the flushed offset, and the next fdatasync
 * covers everything written meanwhile. A sync waiter not served within syncFlushTimeoutMs is answered
 * FlushDiskTimeout (its record stays written, as in RocketMQ). Waiters end in offset order, so they sit
 * in a FIFO and only its head is ever looked at.
 *
 * The periodic fdatasync (every flushIntervalMs, both policies) is run by the store through flush().
 */
import type { FlushPolicy } from './api.js';
import type { CommitLog } from './commit-log.js';

export type WaiterOutcome = 'ok' | 'timeout' | 'failed';

/**
 * A put waiting for its records. The store's own record (its promise and placement) is the waiter,
 * answered through `FlushServiceOptions.complete`, so that a put costs one object here, not a waiter
 * plus a callback closure.
 */
export interface FlushWaiter {
  /** One past the put's last record. */
  readonly endOffset: number;
  /** Set by wait(); sync policy only. */
  deadlineMs: number;
}

export interface FlushServiceOptions<W extends FlushWaiter> {
  policy: FlushPolicy;
  commitLog: CommitLog;
  syncFlushTimeoutMs: number;
  /** Answers a waiter, exactly once. */
  complete: (waiter: W, outcome: WaiterOutcome) => void;
  /** A failed fdatasync: the store turns read-only. */
  onFlushError: (err: unknown) => void;
}

export class FlushService<W extends FlushWaiter> {
  private waiters: W[] = [];
  private head = 0;
  private flushing: Promise<void> | undefined;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private failed = false;
  /** fdatasync calls made on CommitLog segments. */
  fdatasyncCount = 0;
  /** fdatasync rounds (one per group commit, possibly several segments). */
  flushRounds = 0;

  constructor(private readonly options: FlushServiceOptions<W>) {}

  /** The fdatasync round in progress, if any. */
  get inFlight(): Promise<void> | undefined {
    return this.flushing;
  }

  get pendingWaiters(): number {
    return this.waiters.length - this.head;
  }

  /** Registers a put; `complete` answers it exactly once. */
  wait(waiter: W): void {
    this.waiters.push(waiter);
    if (this.options.policy === 'sync') {
      waiter.deadlineMs = Date.now() + this.options.syncFlushTimeoutMs;
      if (this.timeoutTimer === undefined) this.armTimeout(waiter.deadlineMs);
    }
  }

  /** The CommitLog wrote more bytes: wake async waiters, or start a group commit for sync ones. */
  onWritten(): void {
    if (this.options.policy === 'async') {
      this.wake(this.options.commitLog.writtenOffset);
    } else if (this.needsSyncFlush()) {
      void this.flush();
    }
  }

  private needsSyncFlush(): boolean {
    const log = this.options.commitLog;
    return (
      !this.failed && this.flushing === undefined && this.pendingWaiters > 0 && log.flushedOffset < log.writtenOffset
    );
  }

  /**
   * fdatasync everything written so far, repeating while sync waiters remain past the flushed offset.
   * Concurrent callers share the round in progress.
   */
  flush(): Promise<void> {
    if (this.flushing !== undefined) return this.flushing;
    const round = this.runFlushes().finally(() => {
      this.flushing = undefined;
      // Puts written while the last round ran may still wait.
      if (this.options.policy === 'sync' && this.needsSyncFlush()) void this.flush();
    });
    this.flushing = round;
    return round;
  }

  private async runFlushes(): Promise<void> {
    const log = this.options.commitLog;
    while (!this.failed && log.flushedOffset < log.writtenOffset) {
      const target = log.writtenOffset;
      try {
        for (const segment of log.segmentsBetween(log.flushedOffset, target)) {
          this.fdatasyncCount++;
          await segment.datasync();
        }
      } catch (err) {
        this.failed = true;
        log.failFromFlush(err);
        this.options.onFlushError(err);
        this.failFrom(log.flushedOffset);
        return;
      }
      this.flushRounds++;
      if (target > log.flushedOffset) log.flushedOffset = target;
      if (this.options.policy === 'sync') this.wake(log.flushedOffset);
      const next = this.waiters[this.head];
      if (this.options.policy === 'async' || next === undefined || next.endOffset > log.writtenOffset) break;
    }
  }

  /** Answers every waiter whose records end at or below `offset`. */
  private wake(offset: number): void {
    while (this.head < this.waiters.length) {
      const waiter = this.waiters[this.head];
      if (waiter === undefined || waiter.endOffset > offset) break;
      this.head++;
      this.options.complete(waiter, 'ok');
    }
    this.compact();
  }

  /** Fails every waiter past `offset` (a write or flush error). */
  failFrom(offset: number): void {
    if (this.options.policy === 'async') this.wake(offset);
    while (this.head < this.waiters.length) {
      const waiter = this.waiters[this.head++];
      if (waiter === undefined) continue;
      this.options.complete(waiter, waiter.endOffset <= offset && this.options.policy === 'async' ? 'ok' : 'failed');
    }
    this.compact();
  }

  private compact(): void {
    if (this.head === this.waiters.length) {
      this.waiters = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.head);
      this.head = 0;
    }
    if (this.head === this.waiters.length && this.timeoutTimer !== undefined) {
      clearTimeout(this.timeoutTimer);
      this.timeoutTimer = undefined;
    }
  }

  private armTimeout(deadlineMs: number): void {
    this.timeoutTimer = setTimeout(this.expire, Math.max(1, deadlineMs - Date.now()));
  }

  private readonly expire = (): void => {
    this.timeoutTimer = undefined;
    const now = Date.now();
    while (this.head < this.waiters.length) {
      const waiter = this.waiters[this.head];
      if (waiter === undefined || waiter.deadlineMs > now) break;
      this.head++;
      this.options.complete(waiter, 'timeout');
    }
    this.compact();
    const next = this.waiters[this.head];
    if (next !== undefined && this.timeoutTimer === undefined) this.armTimeout(next.deadlineMs);
  };

  /** Stops the timeout timer; waiters still pending are failed. */
  close(): void {
    if (this.timeoutTimer !== undefined) clearTimeout(this.timeoutTimer);
    this.timeoutTimer = undefined;
    this.failFrom(this.options.commitLog.flushedOffset);
  }
}
