/**
 * Requests a channel sent that still wait for their response, by key (the opaque over TCP, a number
 * of its own in process), with their timeouts. One timer, armed for the earliest deadline, covers
 * them all instead of a timer set and cleared on every request (that showed up on the send path's
 * profile); when it fires it fails what is due and re-arms for the next deadline.
 */
import { ChurnMap } from '../common/churn-map.js';
import { ErrorCode, RbError } from '../common/errors.js';
import type { RemotingCommand } from './command.js';

interface Waiting {
  key: number;
  resolve: (response: RemotingCommand) => void;
  reject: (err: Error) => void;
  code: number;
  timeoutMs: number;
  /** performance.now() time at which the request times out. */
  deadlineMs: number;
}

export class PendingRequests {
  /** A ChurnMap: one entry comes and goes per request (see churn-map.ts for why not a Map). */
  private readonly byKey = new ChurnMap<number, Waiting>();
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires (Infinity when none is armed). */
  private timerDueMs = Infinity;

  /** `timeoutText` names a timed-out request in its error ("request code 10 to 1.2.3.4:5"). */
  constructor(private readonly timeoutText: (code: number) => string) {}

  get size(): number {
    return this.byKey.size;
  }

  /** Waits for the response to `key`; a request still waiting under the same key is failed first. */
  add(
    key: number,
    code: number,
    timeoutMs: number,
    resolve: (response: RemotingCommand) => void,
    reject: (err: Error) => void,
  ): void {
    const previous = this.take(key);
    // Opaques wrap at 2^31; a collision means a very old request still waits: fail it.
    previous?.reject(new RbError(ErrorCode.RequestTimeout, `request ${key} superseded by a newer one`));
    const deadlineMs = performance.now() + timeoutMs;
    this.byKey.set(key, { key, resolve, reject, code, timeoutMs, deadlineMs });
    if (deadlineMs < this.timerDueMs) this.armTimer(deadlineMs);
  }

  /** Removes the request waiting under `key` and returns it to settle; undefined when none waits. */
  take(key: number): Pick<Waiting, 'resolve' | 'reject' | 'code'> | undefined {
    const waiting = this.byKey.get(key);
    if (waiting === undefined) return undefined;
    this.byKey.delete(key);
    if (this.byKey.size === 0) this.stopTimer();
    return waiting;
  }

  /** Fails every waiting request (the channel closed). */
  rejectAll(error: (code: number) => Error): void {
    this.stopTimer();
    const waiting = this.byKey.values();
    this.byKey.clear();
    for (const each of waiting) each.reject(error(each.code));
  }

  private armTimer(dueMs: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerDueMs = dueMs;
    this.timer = setTimeout(this.expire, Math.max(1, Math.ceil(dueMs - performance.now())));
  }

  private stopTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDueMs = Infinity;
  }

  /**
   * Fails the requests whose deadline has passed and re-arms the timer for the next deadline. A scan
   * of what waits, once per firing: the timer fires about once per timeout, not per request.
   */
  private readonly expire = (): void => {
    this.timer = undefined;
    this.timerDueMs = Infinity;
    const nowMs = performance.now();
    let nextDueMs = Infinity;
    for (const waiting of this.byKey.values()) {
      if (waiting.deadlineMs > nowMs) {
        nextDueMs = Math.min(nextDueMs, waiting.deadlineMs);
        continue;
      }
      // Settled meanwhile by a callback of this same scan: leave it.
      if (this.byKey.get(waiting.key) !== waiting) continue;
      this.take(waiting.key);
      waiting.reject(
        new RbError(
          ErrorCode.RequestTimeout,
          `${this.timeoutText(waiting.code)} timed out after ${waiting.timeoutMs} ms`,
        ),
      );
    }
    if (nextDueMs < this.timerDueMs) this.armTimer(nextDueMs);
  };
}
