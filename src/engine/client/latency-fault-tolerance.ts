/**
 * Which broker addresses a producer should stay away from for a while (RocketMQ MQFaultStrategy and
 * LatencyFaultToleranceImpl). A send that failed with a lost connection or a timeout isolates the
 * address; a slow send keeps it out for a time that grows with its latency (RocketMQ's table); a fast
 * successful send clears it. Keyed by address, not broker name: after a failover the new master of a
 * broker name has a new address and is usable at once, while the dead one stays avoided.
 */
import { ErrorCode, isRbError } from '../common/errors.js';

/** RocketMQ MQFaultStrategy.latencyMax: latency thresholds (ms), ascending. */
export const DEFAULT_LATENCY_MAX_MS: readonly number[] = [50, 100, 550, 1000, 2000, 3000, 15_000];
/** RocketMQ MQFaultStrategy.notAvailableDuration: how long (ms) an address is avoided per threshold. */
export const DEFAULT_NOT_AVAILABLE_DURATION_MS: readonly number[] = [0, 0, 30_000, 60_000, 120_000, 180_000, 600_000];
/** How long an address is avoided after a connection error or timeout. */
export const DEFAULT_ISOLATION_MS = 30_000;

export interface LatencyFaultOptions {
  /** Latency thresholds (ms), ascending; same length as notAvailableDurationMs. */
  latencyMaxMs?: readonly number[];
  /** How long (ms) an address is avoided once a send took at least the matching threshold. */
  notAvailableDurationMs?: readonly number[];
  /** How long (ms) an address is avoided after a connection error or timeout. */
  isolationMs?: number;
  /** The clock; tests pass their own. */
  now?: () => number;
}

interface FaultItem {
  /** The address may be used again from this time on. */
  availableAtMs: number;
}

export class LatencyFaultTolerance {
  private readonly latencyMaxMs: readonly number[];
  private readonly notAvailableDurationMs: readonly number[];
  private readonly isolationMs: number;
  /** The lowest latency that makes an address avoided at all (550 ms with RocketMQ's table). */
  private readonly firstPausingLatencyMs: number;
  private readonly now: () => number;
  private readonly items = new Map<string, FaultItem>();

  constructor(options: LatencyFaultOptions = {}) {
    this.latencyMaxMs = options.latencyMaxMs ?? DEFAULT_LATENCY_MAX_MS;
    this.notAvailableDurationMs = options.notAvailableDurationMs ?? DEFAULT_NOT_AVAILABLE_DURATION_MS;
    if (this.latencyMaxMs.length !== this.notAvailableDurationMs.length) {
      throw new RangeError('latencyMaxMs and notAvailableDurationMs must have the same length');
    }
    this.isolationMs = options.isolationMs ?? DEFAULT_ISOLATION_MS;
    const pausing = this.notAvailableDurationMs.findIndex((durationMs) => durationMs > 0);
    this.firstPausingLatencyMs = pausing < 0 ? Infinity : (this.latencyMaxMs[pausing] ?? Infinity);
    this.now = options.now ?? Date.now;
  }

  /** How long an address is avoided after a send that took `latencyMs` (0: not at all). */
  notAvailableDuration(latencyMs: number): number {
    for (let i = this.latencyMaxMs.length - 1; i >= 0; i--) {
      if (latencyMs >= (this.latencyMaxMs[i] ?? Infinity)) return this.notAvailableDurationMs[i] ?? 0;
    }
    return 0;
  }

  /**
   * Records the outcome of a send to `address`: `isolation` for a connection error or timeout, else
   * the latency of an answered send. An answer fast enough to need no pause clears the address.
   */
  update(address: string, latencyMs: number, isolation: boolean): void {
    // The usual send: answered fast with nothing avoided, so there is nothing to record or clear.
    if (!isolation && this.items.size === 0 && latencyMs < this.firstPausingLatencyMs) return;
    const durationMs = isolation ? this.isolationMs : this.notAvailableDuration(latencyMs);
    if (durationMs <= 0) {
      this.items.delete(address);
      return;
    }
    this.items.set(address, { availableAtMs: this.now() + durationMs });
  }

  isAvailable(address: string): boolean {
    const item = this.items.get(address);
    if (item === undefined) return true;
    if (this.now() < item.availableAtMs) return false;
    // Expired: the next send decides again; keeping the entry would only grow the table.
    this.items.delete(address);
    return true;
  }

  /** When `address` may be used again (ms since the epoch); 0 when it may be used now. */
  availableAt(address: string): number {
    return this.isAvailable(address) ? 0 : (this.items.get(address)?.availableAtMs ?? 0);
  }

  /** Whether any address has an entry (possibly expired): lets callers skip per-address checks. */
  get empty(): boolean {
    return this.items.size === 0;
  }

  remove(address: string): void {
    this.items.delete(address);
  }

  /** The addresses avoided now (for logs and tests). */
  unavailable(): string[] {
    return [...this.items.keys()].filter((address) => !this.isAvailable(address));
  }
}

/** A failure that says the address cannot be reached now (no answer, lost link), not a broker's refusal. */
export function isUnreachable(err: unknown): boolean {
  return isRbError(err, ErrorCode.ConnectionClosed) || isRbError(err, ErrorCode.RequestTimeout);
}
