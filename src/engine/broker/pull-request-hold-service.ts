/**
 * Long polling (RocketMQ PullRequestHoldService): a pull that finds nothing and carries the suspend
 * flag is parked here, keyed by topic@queueId, until a message that may match arrives on that queue
 * (the store's arrival listener), its suspend time runs out, or the broker shuts down. Each wake-up
 * re-runs the pull once without the right to suspend again. A periodic check compares the queues' max
 * offsets with the parked requests, in case an arrival was missed.
 */
import { ChurnMap, ChurnSet } from '../common/churn-map.js';
import { createLogger } from '../common/logger.js';
import { mayMatchTagsCode, type TagFilter } from '../common/tag-expression.js';

export interface HeldPull {
  readonly topic: string;
  readonly queueId: number;
  /** The queue offset the pull asked for: any message at or past it wakes the pull. */
  readonly queueOffset: number;
  readonly filter: TagFilter;
  /** Re-runs the pull and sends its answer; called exactly once. */
  readonly wake: () => void;
}

interface Parked extends HeldPull {
  readonly timer: NodeJS.Timeout;
}

const log = createLogger('pull-hold');

function keyOf(topic: string, queueId: number): string {
  return `${topic}@${queueId}`;
}

export class PullRequestHoldService {
  /** ChurnMap/ChurnSet: a pull comes and goes per request (see churn-map.ts for why not Map/Set). */
  private readonly parked = new ChurnMap<string, ChurnSet<Parked>>();
  private parkedCount = 0;
  /** Warn once each time the limit is reached, not for every pull past it. */
  private warnedFull = false;
  private checkTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    /** The queue's current max offset (one past the last message). */
    private readonly maxOffsetOf: (topic: string, queueId: number) => number,
    private readonly checkIntervalMs: number,
    private readonly maxHeldPulls: number,
  ) {}

  start(): void {
    this.checkTimer = setInterval(() => this.checkAll(), this.checkIntervalMs);
    this.checkTimer.unref();
  }

  /** Number of pulls waiting now. */
  get size(): number {
    return this.parkedCount;
  }

  /** Parks a pull for at most `suspendMs`; after shutdown or past maxHeldPulls it is woken at once. */
  hold(pull: HeldPull, suspendMs: number): void {
    if (this.stopped || this.parkedCount >= this.maxHeldPulls) {
      if (!this.stopped && !this.warnedFull) {
        this.warnedFull = true;
        log.warn({ maxHeldPulls: this.maxHeldPulls }, 'too many held pulls: answering new ones at once');
      }
      pull.wake();
      return;
    }
    const key = keyOf(pull.topic, pull.queueId);
    let set = this.parked.get(key);
    if (set === undefined) {
      set = new ChurnSet();
      this.parked.set(key, set);
    }
    const parked: Parked = { ...pull, timer: setTimeout(() => this.release(key, parked), suspendMs) };
    set.add(parked);
    this.parkedCount++;
    // A message may have arrived between the read and now.
    if (this.maxOffsetOf(pull.topic, pull.queueId) > pull.queueOffset) this.release(key, parked);
  }

  /**
   * A message was appended at `queueOffset` of the queue (the store's arrival listener); wakes the
   * pulls waiting for it whose filter may match its tag hash code. `tagsCode` undefined matches all.
   */
  notifyMessageArriving(topic: string, queueId: number, queueOffset: number, tagsCode: number | undefined): void {
    const key = keyOf(topic, queueId);
    const set = this.parked.get(key);
    if (set === undefined) return;
    for (const parked of [...set]) {
      if (queueOffset < parked.queueOffset) continue;
      if (tagsCode !== undefined && !mayMatchTagsCode(parked.filter, tagsCode)) continue;
      this.release(key, parked);
    }
  }

  /** Wakes every parked pull (their answers are whatever the queue holds now). */
  shutdown(): void {
    this.stopped = true;
    if (this.checkTimer !== undefined) clearInterval(this.checkTimer);
    this.checkTimer = undefined;
    for (const key of this.parked.keyStrings()) {
      for (const parked of this.parked.get(key) ?? []) this.release(key, parked);
    }
  }

  private checkAll(): void {
    for (const set of this.parked.values()) {
      const first = set.values()[0];
      if (first === undefined) continue;
      const maxOffset = this.maxOffsetOf(first.topic, first.queueId);
      if (maxOffset > 0) this.notifyMessageArriving(first.topic, first.queueId, maxOffset - 1, undefined);
    }
  }

  private release(key: string, parked: Parked): void {
    const set = this.parked.get(key);
    if (set === undefined || !set.delete(parked)) return;
    this.parkedCount--;
    if (this.parkedCount < this.maxHeldPulls) this.warnedFull = false;
    if (set.size === 0) this.parked.delete(key);
    clearTimeout(parked.timer);
    // Run the pull outside the store's put path that may have called us.
    setImmediate(() => {
      try {
        parked.wake();
      } catch (err) {
        log.warn({ err, key }, 'waking a held pull failed');
      }
    });
  }
}
