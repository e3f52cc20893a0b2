/**
 * CommitLog retention (RocketMQ CleanCommitLogService): delete whole segments, oldest first, while
 * the oldest is expired (its newest message is older than fileReservedMs) or the disk is fuller than
 * diskMaxUsedRatio. Only a prefix of the log is ever deleted, so the log stays contiguous, and never
 * the segment being written. Afterwards the ConsumeQueues and the index drop what points below the
 * new minimum (the store does that through `afterDelete`).
 *
 * A segment's newest-message time is known exactly for segments written by this process; for older
 * ones the file's modification time stands in for it (RocketMQ uses the modification time for all).
 */
import { statSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import type { Logger } from '../common/logger.js';
import type { CommitLog } from './commit-log.js';
import type { SegmentFile } from './segment-file.js';

/** The fraction of the disk in use (0..1). */
export type DiskUsageProbe = (storePath: string) => Promise<number> | number;

/** fs.statfs on the store's file system: blocks in use over all blocks. */
export const statfsDiskUsage: DiskUsageProbe = async (storePath) => {
  const stats = await statfs(storePath);
  return stats.blocks === 0 ? 0 : (stats.blocks - stats.bfree) / stats.blocks;
};

export interface RetentionOptions {
  storePath: string;
  commitLog: CommitLog;
  fileReservedMs: number;
  diskMaxUsedRatio: number;
  diskUsage: DiskUsageProbe;
  logger: Logger;
  /** Tells ConsumeQueues and the index the new CommitLog minimum. */
  afterDelete: (commitLogMinOffset: number) => void;
}

function newestMessageTimeMs(segment: SegmentFile): number {
  if (segment.lastStoreTimestampMs > 0) return segment.lastStoreTimestampMs;
  try {
    return statSync(segment.path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Deletes what retention allows at `nowMs`; returns the number of segments deleted. */
export async function runRetention(options: RetentionOptions, nowMs: number): Promise<number> {
  const { commitLog, logger } = options;
  let deleted = 0;
  // Bounded: each pass deletes one segment or stops, and the active segment is never deleted.
  for (let guard = commitLog.segmentList.length; guard > 0; guard--) {
    const oldest = commitLog.segmentList[0];
    if (oldest === undefined || oldest === commitLog.activeSegment()) break;
    // A segment still waiting for its write or its fdatasync stays (a flush may hold its fd).
    if (oldest.endOffset > commitLog.flushedOffset) break;
    const ageMs = nowMs - newestMessageTimeMs(oldest);
    const expired = ageMs > options.fileReservedMs;
    let diskFull = false;
    if (!expired) {
      const usage = await options.diskUsage(options.storePath);
      diskFull = usage > options.diskMaxUsedRatio;
      if (diskFull) logger.warn({ usage, limit: options.diskMaxUsedRatio }, 'disk above its limit: deleting oldest');
    }
    if (!expired && !diskFull) break;
    // Re-check after the await: the log may have changed meanwhile.
    if (commitLog.segmentList[0] !== oldest || oldest === commitLog.activeSegment()) break;
    commitLog.deleteOldestSegment();
    deleted++;
    logger.info({ segment: oldest.path, expired, diskFull }, 'CommitLog segment deleted by retention');
  }
  if (deleted > 0) options.afterDelete(commitLog.minOffset());
  return deleted;
}
