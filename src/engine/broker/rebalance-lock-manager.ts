/**
 * Queue locks for orderly consumers (RocketMQ RebalanceLockManager): within a group, a queue is held
 * by at most one clientId; the holder re-locking extends the lock, and a lock not renewed for
 * rebalanceLockMaxLiveTimeMs is free for anyone. Locks live in memory only, as in RocketMQ: after a
 * broker restart every client simply locks again.
 */
export interface LockQueue {
  topic: string;
  brokerName: string;
  queueId: number;
}

interface LockEntry {
  clientId: string;
  lastUpdateMs: number;
}

function queueKey(queue: LockQueue): string {
  return `${queue.topic}\u0001${queue.brokerName}\u0001${queue.queueId}`;
}

export class RebalanceLockManager {
  private readonly groups = new Map<string, Map<string, LockEntry>>();

  constructor(private readonly maxLiveTimeMs: number) {}

  /** Locks what it can for `clientId`; returns the queues the client holds now. */
  tryLockBatch(group: string, queues: readonly LockQueue[], clientId: string, nowMs = Date.now()): LockQueue[] {
    let locks = this.groups.get(group);
    if (locks === undefined) {
      locks = new Map();
      this.groups.set(group, locks);
    }
    const locked: LockQueue[] = [];
    for (const queue of queues) {
      const key = queueKey(queue);
      const entry = locks.get(key);
      if (entry === undefined || entry.clientId === clientId || nowMs - entry.lastUpdateMs > this.maxLiveTimeMs) {
        locks.set(key, { clientId, lastUpdateMs: nowMs });
        locked.push(queue);
      }
    }
    return locked;
  }

  /** Releases the queues `clientId` holds; others' locks are left alone. */
  unlockBatch(group: string, queues: readonly LockQueue[], clientId: string): void {
    const locks = this.groups.get(group);
    if (locks === undefined) return;
    for (const queue of queues) {
      const key = queueKey(queue);
      if (locks.get(key)?.clientId === clientId) locks.delete(key);
    }
    if (locks.size === 0) this.groups.delete(group);
  }

  /** The live holder of a queue, if any. */
  holderOf(group: string, queue: LockQueue, nowMs = Date.now()): string | undefined {
    const entry = this.groups.get(group)?.get(queueKey(queue));
    return entry === undefined || nowMs - entry.lastUpdateMs > this.maxLiveTimeMs ? undefined : entry.clientId;
  }
}
