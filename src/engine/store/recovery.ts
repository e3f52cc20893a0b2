/**
 * Recovery at start (RocketMQ recoverNormally / recoverAbnormally, folded into one walk):
 *
 * 1. Trust the CommitLog up to the checkpoint's flushed offset. From there walk the records with
 *    checkRecord (CRC-checked when configured), follow blank records to the next segment, and stop
 *    at the first record that is incomplete or corrupt, or at a zero header (the end of the data).
 *    After a clean shutdown the walk starts at the end of the data and reads one header.
 * 2. Cut the log there: zero the rest of that segment (after a crash), delete later segments, and
 *    log what was cut.
 * 3. Drop ConsumeQueue units and index entries that point past the new end, then re-dispatch the
 *    records from the smaller of the ConsumeQueue and index flushed offsets. Dispatch is idempotent,
 *    so records whose units survived are skipped.
 *
 * This module walks and decides; the store supplies the ConsumeQueue and index operations.
 */
import type { Logger } from '../common/logger.js';
import { checkRecord, type RecordCheck } from '../common/message-record.js';
import { MessageSysFlag, transactionTypeOf } from '../common/message.js';
import { indexKeysOf, MessageProperty } from '../common/properties.js';
import { tagsCodeOf } from '../common/tag-expression.js';
import type { CheckpointState } from './checkpoint.js';
import type { CommitLog, DispatchRequest } from './commit-log.js';
import {
  recordCommitLogOffset,
  recordProperties,
  recordQueueId,
  recordQueueOffset,
  recordStoreTimestamp,
  recordSysFlag,
  recordTopic,
} from './record-view.js';
import type { SegmentFile } from './segment-file.js';

/** Records are read in chunks of this size (grown for a larger record). */
const WALK_CHUNK_BYTES = 4 * 1024 * 1024;

export interface Truncation {
  /** Where the log now ends: the start of the damaged record. */
  commitLogOffset: number;
  reason: string;
  /** Non-zero bytes cut from the damaged segment (up to the first all-zero chunk). */
  cutBytes: number;
  deletedSegments: number;
}

export interface RecoveryReport {
  /** True when the abort marker was found or the checkpoint could not be trusted. */
  crashed: boolean;
  /** Where the record walk started (the checkpoint's flushed offset, or the oldest segment). */
  verifiedFromOffset: number;
  /** The end of the valid log; appends continue here. */
  endOffset: number;
  truncation?: Truncation;
  redispatchedFromOffset: number;
  redispatchedRecords: number;
}

export interface RecoveryInput {
  commitLog: CommitLog;
  /** The checkpoint, or why there is none to trust. */
  checkpoint: CheckpointState | string;
  abortMarkerFound: boolean;
  verifyCrc: boolean;
  logger: Logger;
  /** Drop ConsumeQueue units and index entries of records at or past `endOffset`. */
  truncateDerived: (endOffset: number) => void;
  dispatch: (request: DispatchRequest) => void;
}

interface WalkEnd {
  endOffset: number;
  /** Set when the walk stopped at damage rather than at the end of the data. */
  damage?: string;
  lastStoreTimestamp: number;
}

/** Walks valid records from `fromOffset` (up to `toOffset` when given). */
function walkRecords(
  log: CommitLog,
  fromOffset: number,
  toOffset: number | undefined,
  verifyCrc: boolean,
  onMessage: (chunk: Buffer, at: number, commitLogOffset: number, size: number) => void,
): WalkEnd {
  let chunk = Buffer.allocUnsafe(Math.min(WALK_CHUNK_BYTES, log.segmentBytes));
  let chunkSegment: SegmentFile | undefined;
  let chunkStart = 0;
  let chunkLength = 0;
  let position = fromOffset;
  let lastStoreTimestamp = 0;
  const fill = (segment: SegmentFile, at: number): void => {
    const length = Math.min(chunk.length, segment.endOffset - at);
    chunkLength = segment.readInto(chunk, 0, length, at - segment.startOffset);
    chunkSegment = segment;
    chunkStart = at;
  };
  for (;;) {
    if (toOffset !== undefined && position >= toOffset) return { endOffset: position, lastStoreTimestamp };
    const segment = log.segmentAt(position);
    if (segment === undefined) return { endOffset: position, lastStoreTimestamp };
    const leftInSegment = segment.endOffset - position;
    let at = position - chunkStart;
    if (chunkSegment !== segment || at < 0 || at + 8 > chunkLength) {
      fill(segment, position);
      at = 0;
    }
    let check: RecordCheck = checkRecord(chunk, at, chunkLength - at, verifyCrc);
    if (check.kind === 'incomplete' && chunkLength - at < leftInSegment && chunkLength - at >= 8) {
      // The record may only cross the chunk's end: read again from its start, large enough for it.
      const declaredBytes = chunk.readInt32BE(at);
      if (declaredBytes > chunk.length && declaredBytes <= leftInSegment) chunk = Buffer.allocUnsafe(declaredBytes);
      fill(segment, position);
      at = 0;
      check = checkRecord(chunk, at, chunkLength, verifyCrc);
    }
    switch (check.kind) {
      case 'message': {
        const storedOffset = recordCommitLogOffset(chunk, at);
        if (storedOffset !== position) {
          return { endOffset: position, damage: `record says it is at ${storedOffset}`, lastStoreTimestamp };
        }
        onMessage(chunk, at, position, check.size);
        lastStoreTimestamp = recordStoreTimestamp(chunk, at);
        position += check.size;
        break;
      }
      case 'blank':
        if (check.size !== leftInSegment) {
          return {
            endOffset: position,
            damage: `blank record of ${check.size} bytes where ${leftInSegment} are left`,
            lastStoreTimestamp,
          };
        }
        position = segment.endOffset;
        break;
      case 'incomplete':
        return { endOffset: position, damage: 'incomplete record', lastStoreTimestamp };
      case 'corrupt': {
        const zeroHeader = chunkLength - at >= 8 && chunk.readInt32BE(at) === 0 && chunk.readInt32BE(at + 4) === 0;
        if (zeroHeader) return { endOffset: position, lastStoreTimestamp };
        return { endOffset: position, damage: check.reason, lastStoreTimestamp };
      }
    }
  }
}

/** How many bytes from `position` in its segment hold data (up to the first all-zero chunk). */
function nonZeroExtent(log: CommitLog, position: number): number {
  const segment = log.segmentAt(position);
  if (segment === undefined) return 0;
  const chunk = Buffer.allocUnsafe(1024 * 1024);
  let extent = 0;
  for (let at = position; at < segment.endOffset; at += chunk.length) {
    const read = segment.readInto(chunk, 0, Math.min(chunk.length, segment.endOffset - at), at - segment.startOffset);
    let last = -1;
    for (let i = read - 1; i >= 0; i--) {
      if (chunk[i] !== 0) {
        last = i;
        break;
      }
    }
    if (last < 0) break;
    extent = at + last + 1 - position;
  }
  return extent;
}

/** Builds the dispatch request of the stored record at `chunk[at]`. */
export function dispatchRequestOf(chunk: Buffer, at: number, commitLogOffset: number, size: number): DispatchRequest {
  const properties = recordProperties(chunk, at);
  const indexKeys = indexKeysOf(properties);
  const tranType = transactionTypeOf(recordSysFlag(chunk, at));
  return {
    topic: recordTopic(chunk, at),
    queueId: recordQueueId(chunk, at),
    queueOffset: recordQueueOffset(chunk, at),
    commitLogOffset,
    size,
    tagsCode: tagsCodeOf(properties[MessageProperty.Tags]),
    indexKeys,
    storeTimestamp: recordStoreTimestamp(chunk, at),
    inQueue: tranType !== MessageSysFlag.TransactionPreparedType && tranType !== MessageSysFlag.TransactionRollbackType,
    indexed: tranType !== MessageSysFlag.TransactionRollbackType,
  };
}

/** Recovers the CommitLog and the derived files; positions the log for appends. */
export function recover(input: RecoveryInput): RecoveryReport {
  const { commitLog: log, logger } = input;
  const checkpoint = typeof input.checkpoint === 'string' ? undefined : input.checkpoint;
  const minOffset = log.minOffset();
  const lastSegment = log.segmentList[log.segmentList.length - 1];
  // A new store has neither a checkpoint nor segments, and nothing to distrust.
  const crashed = input.abortMarkerFound || (checkpoint === undefined && lastSegment !== undefined);
  const maxFileOffset = lastSegment?.endOffset ?? 0;
  if (checkpoint === undefined && lastSegment !== undefined) {
    logger.warn({ reason: input.checkpoint }, 'no usable checkpoint: verifying the CommitLog from its oldest segment');
  }
  let verifiedFromOffset = minOffset;
  if (checkpoint !== undefined) {
    verifiedFromOffset = Math.min(Math.max(checkpoint.commitLogFlushedOffset, minOffset), maxFileOffset);
  }

  const walk = walkRecords(log, verifiedFromOffset, undefined, input.verifyCrc, () => {});
  const endOffset = walk.endOffset;
  let truncation: Truncation | undefined;
  const cutBytes = walk.damage !== undefined ? nonZeroExtent(log, endOffset) : 0;
  const deletedSegments = log.truncateAndPosition(
    endOffset,
    crashed || walk.damage !== undefined,
    Math.max(walk.lastStoreTimestamp, checkpoint?.physicMsgTimestamp ?? 0),
  );
  if (walk.damage !== undefined || deletedSegments > 0) {
    truncation = {
      commitLogOffset: endOffset,
      reason: walk.damage ?? 'segments past the end of the data',
      cutBytes,
      deletedSegments,
    };
    logger.warn(truncation, 'CommitLog tail cut during recovery');
  }

  input.truncateDerived(endOffset);
  let redispatchedFromOffset = endOffset;
  if (checkpoint !== undefined) {
    redispatchedFromOffset = Math.min(checkpoint.consumeQueueFlushedOffset, checkpoint.indexFlushedOffset, endOffset);
  } else {
    redispatchedFromOffset = minOffset;
  }
  redispatchedFromOffset = Math.max(redispatchedFromOffset, log.minOffset());
  let redispatchedRecords = 0;
  const redispatch = walkRecords(log, redispatchedFromOffset, endOffset, false, (chunk, at, commitLogOffset, size) => {
    input.dispatch(dispatchRequestOf(chunk, at, commitLogOffset, size));
    redispatchedRecords++;
  });
  if (redispatch.endOffset < endOffset) {
    // Bytes below the checkpoint's flushed offset that no longer parse: report, keep what parsed.
    logger.error(
      { commitLogOffset: redispatch.endOffset, reason: redispatch.damage },
      'CommitLog damaged below the checkpoint; ConsumeQueues stop there',
    );
  }
  const report: RecoveryReport = {
    crashed,
    verifiedFromOffset,
    endOffset,
    redispatchedFromOffset,
    redispatchedRecords,
  };
  if (truncation !== undefined) report.truncation = truncation;
  if (crashed) logger.info(report, 'store recovered after an unclean shutdown');
  return report;
}
