/**
 * The CommitLog: one append-only byte space cut into fixed-size segment files. It owns the segments,
 * the write buffer, the per-queue offset counters and the three positions of the log:
 *
 *   minOffset <= flushedOffset <= writtenOffset <= appendOffset
 *
 * - appendOffset: where the next record goes. Appends encode straight into an in-memory write buffer
 *   and assign the CommitLog offset and the queue offset synchronously.
 * - writtenOffset: bytes handed to the file (page cache). The buffer is written in one big write per
 *   event-loop turn (setImmediate), or earlier when it fills or the segment rolls.
 * - flushedOffset: bytes covered by an fdatasync; the FlushService moves it.
 *
 * Readers only ever see written bytes: records are dispatched (ConsumeQueue, index, listeners) after
 * the write that carries them, so a ConsumeQueue unit never points into the buffer. What to do with
 * written records (dispatch, waking puts) is the caller's, through `onWritten`.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { invariant } from '../common/assert.js';
import { ErrorCode, RbError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import {
  BLANK_RECORD_MIN_BYTES,
  type PreparedRecord,
  type RecordPlacement,
  writeBlankRecord,
  writeRecord,
} from '../common/message-record.js';
import { type HostAddress, MessageSysFlag, transactionTypeOf } from '../common/message.js';
import type { FileIo } from './file-io.js';
import { parseSegmentFileName, SegmentFile } from './segment-file.js';

/** What the dispatcher needs to know about one written message record. */
export interface DispatchRequest {
  topic: string;
  queueId: number;
  queueOffset: number;
  commitLogOffset: number;
  size: number;
  tagsCode: number;
  /** KEYS split, then UNIQ_KEY when present. */
  indexKeys: readonly string[];
  storeTimestamp: number;
  /** False for prepared and rolled-back transaction records (RocketMQ keeps them out of queues). */
  inQueue: boolean;
  /** False for rolled-back transaction records (RocketMQ does not index them). */
  indexed: boolean;
}

/** A record to append: the prepared bytes plus what the dispatcher needs from the message. */
export interface AppendItem {
  prepared: PreparedRecord;
  tagsCode: number;
  indexKeys: readonly string[];
}

export interface AppendPlacement {
  /** CommitLog offset of the first record. */
  commitLogOffset: number;
  /** One past the last record: the put is done once writtenOffset (or flushedOffset) reaches it. */
  endOffset: number;
  /** Queue offset of the first record. */
  queueOffset: number;
  storeTimestamp: number;
  /** The records lie back to back from commitLogOffset, each of its prepared totalSize. */
  wroteBytes: number;
}

export interface CommitLogOptions {
  dir: string;
  segmentBytes: number;
  storeHost: HostAddress;
  io: FileIo;
  logger: Logger;
  /** Called on a later event-loop turn with the records whose bytes reached the file, in log order. */
  onWritten: (requests: DispatchRequest[]) => void;
  /** Called once when a write fails; the log refuses appends from then on. */
  onWriteError: (err: unknown) => void;
  /** Initial write buffer size (grows for a batch that does not fit). */
  writeBufferBytes?: number;
}

const DEFAULT_WRITE_BUFFER_BYTES = 4 * 1024 * 1024;
/** Largest read window of sequential reads (getMessage). */
const READ_WINDOW_BYTES = 1024 * 1024;

export class CommitLog {
  readonly segmentBytes: number;
  private readonly segments: SegmentFile[] = [];
  /** Next queue offset per topic and queue id (nested, so that an append builds no key string). */
  private readonly queueOffsets = new Map<string, Map<number, number>>();
  /** Reused for every record written: the placement is read during writeRecord only. */
  private readonly placement: RecordPlacement;
  private buffer: Buffer;
  /** CommitLog offset of buffer[0]; the buffer holds [bufferStartOffset, appendOffset). */
  private bufferStartOffset = 0;
  private bufferUsed = 0;
  private pending: DispatchRequest[] = [];
  private written: DispatchRequest[] = [];
  private drainScheduled = false;
  private closed = false;
  private failure: unknown = undefined;
  private lastStoreTimestamp = 0;
  private windowSegment: SegmentFile | undefined;
  private windowStartOffset = 0;
  private window: Buffer = Buffer.alloc(0);

  appendOffset = 0;
  writtenOffset = 0;
  flushedOffset = 0;
  /** Write calls made to segment files (to check that writes are batched). */
  writeCount = 0;

  constructor(private readonly options: CommitLogOptions) {
    this.segmentBytes = options.segmentBytes;
    this.buffer = Buffer.allocUnsafe(
      Math.min(options.segmentBytes, options.writeBufferBytes ?? DEFAULT_WRITE_BUFFER_BYTES),
    );
    this.placement = { queueOffset: 0, commitLogOffset: 0, storeTimestamp: 0, storeHost: options.storeHost };
  }

  /** Opens the segment files found on disk; checks that they are contiguous and of the configured size. */
  load(): void {
    mkdirSync(this.options.dir, { recursive: true });
    const starts = readdirSync(this.options.dir)
      .map((name) => parseSegmentFileName(name))
      .filter((start): start is number => start !== undefined)
      .sort((a, b) => a - b);
    for (const [i, start] of starts.entries()) {
      if (start % this.segmentBytes !== 0) {
        throw new RbError(
          ErrorCode.ConfigInvalid,
          `CommitLog segment ${start} is not a multiple of commitLogSegmentBytes ${this.segmentBytes}`,
        );
      }
      const previous = this.segments[this.segments.length - 1];
      if (previous !== undefined && previous.endOffset !== start) {
        throw new RbError(ErrorCode.CorruptRecord, `CommitLog segments are not contiguous: gap before ${start}`);
      }
      const segment = SegmentFile.open(this.options.io, this.options.dir, start, this.segmentBytes);
      this.segments.push(segment);
      const size = segment.sizeOnDisk();
      if (size > this.segmentBytes || (size < this.segmentBytes && i < starts.length - 1)) {
        throw new RbError(
          ErrorCode.ConfigInvalid,
          `CommitLog segment ${segment.path} has ${size} bytes, expected ${this.segmentBytes}`,
        );
      }
      // A crash between creating the last file and sizing it leaves it short.
      if (size < this.segmentBytes) segment.ensureFullSize();
    }
  }

  get segmentList(): readonly SegmentFile[] {
    return this.segments;
  }

  /** The first readable CommitLog offset (start of the oldest segment). */
  minOffset(): number {
    return this.segments[0]?.startOffset ?? this.appendOffset;
  }

  /** The segment holding `commitLogOffset`, if any. */
  segmentAt(commitLogOffset: number): SegmentFile | undefined {
    const first = this.segments[0];
    if (first === undefined || commitLogOffset < first.startOffset) return undefined;
    return this.segments[Math.floor((commitLogOffset - first.startOffset) / this.segmentBytes)];
  }

  /** The segments holding any byte of [fromOffset, toOffset). */
  segmentsBetween(fromOffset: number, toOffset: number): SegmentFile[] {
    return this.segments.filter((s) => s.endOffset > fromOffset && s.startOffset < toOffset);
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  nextQueueOffset(topic: string, queueId: number): number {
    return this.queueOffsets.get(topic)?.get(queueId) ?? 0;
  }

  setNextQueueOffset(topic: string, queueId: number, queueOffset: number): void {
    this.queueOffsetsOf(topic).set(queueId, queueOffset);
  }

  private queueOffsetsOf(topic: string): Map<number, number> {
    let offsets = this.queueOffsets.get(topic);
    if (offsets === undefined) {
      offsets = new Map();
      this.queueOffsets.set(topic, offsets);
    }
    return offsets;
  }

  /**
   * After recovery: cut the log at `endOffset` (zero the rest of its segment when `zeroTail`, delete
   * later segments) and put all positions there. Returns how many segments were deleted.
   */
  truncateAndPosition(endOffset: number, zeroTail: boolean, lastStoreTimestamp: number): number {
    let deleted = 0;
    for (;;) {
      const last = this.segments[this.segments.length - 1];
      // A segment that starts exactly at endOffset is kept (emptied) as the one to write into.
      if (last === undefined || last.startOffset <= endOffset) break;
      this.segments.pop();
      last.destroy();
      deleted++;
    }
    let segment = this.segmentAt(endOffset);
    if (segment === undefined) {
      // Nothing at endOffset yet: a fresh store, or a crash right after a blank record filled a segment.
      const start = endOffset - (endOffset % this.segmentBytes);
      invariant(start === endOffset || this.segments.length === 0, 'append position inside a missing segment');
      segment = SegmentFile.create(this.options.io, this.options.dir, start, this.segmentBytes);
      this.segments.push(segment);
    } else if (zeroTail) {
      segment.zeroFrom(endOffset - segment.startOffset);
      segment.datasyncSync();
    }
    this.appendOffset = endOffset;
    this.writtenOffset = endOffset;
    this.flushedOffset = endOffset;
    this.bufferStartOffset = endOffset;
    this.bufferUsed = 0;
    this.lastStoreTimestamp = lastStoreTimestamp;
    return deleted;
  }

  /**
   * Replication (a replica rejoining a new master): cuts the log at `endOffset`, a record boundary
   * within [minOffset, writtenOffset], zeroing the rest of its segment and deleting later ones. The
   * caller has drained the buffer. Returns how many segments were deleted.
   */
  truncateTo(endOffset: number): number {
    invariant(this.bufferUsed === 0 && this.written.length === 0, 'truncate with undelivered records');
    invariant(endOffset >= this.minOffset() && endOffset <= this.writtenOffset, `truncate to ${endOffset} off the log`);
    this.windowSegment = undefined;
    return this.truncateAndPosition(endOffset, true, this.lastStoreTimestamp);
  }

  /**
   * Replication (a replica whose log shares nothing usable with its master): deletes every segment
   * and restarts the empty log at `startOffset`, a segment boundary. Queue offset counters restart
   * from the records that arrive next.
   */
  resetTo(startOffset: number): void {
    invariant(this.bufferUsed === 0 && this.written.length === 0, 'reset with undelivered records');
    invariant(startOffset % this.segmentBytes === 0, `reset to ${startOffset}, not a segment boundary`);
    this.windowSegment = undefined;
    for (const segment of this.segments.splice(0)) segment.destroy();
    this.queueOffsets.clear();
    this.truncateAndPosition(startOffset, false, this.lastStoreTimestamp);
  }

  /** The segment being written: never deleted by retention. */
  activeSegment(): SegmentFile | undefined {
    return this.segments[this.segments.length - 1];
  }

  /**
   * Appends records contiguously in one segment. Throws RbError(MessageTooLarge) when they cannot fit
   * a segment, RbError(StoreWriteFailed/StoreReadOnly) when the log has failed. Queue offsets are
   * consecutive from the queue's counter; prepared and rolled-back transaction records take queue
   * offset 0 and do not advance it (RocketMQ CommitLog.DefaultAppendMessageCallback).
   */
  append(items: readonly AppendItem[]): AppendPlacement {
    if (this.failure !== undefined) throw this.readOnlyError();
    let totalBytes = 0;
    for (const item of items) totalBytes += item.prepared.totalSize;
    // Every segment keeps room for a blank record at its end (RocketMQ END_FILE_MIN_BLANK_LENGTH).
    if (totalBytes + BLANK_RECORD_MIN_BYTES > this.segmentBytes) {
      throw new RbError(
        ErrorCode.MessageTooLarge,
        `records of ${totalBytes} bytes do not fit a CommitLog segment of ${this.segmentBytes} bytes`,
      );
    }
    let segment = this.activeSegment();
    invariant(segment !== undefined, 'append before the CommitLog was positioned');
    if (segment.endOffset - this.appendOffset < totalBytes + BLANK_RECORD_MIN_BYTES) {
      segment = this.rollSegment(segment);
    }
    if (this.buffer.length - this.bufferUsed < totalBytes) {
      this.writeOut();
      if (this.buffer.length < totalBytes) this.buffer = Buffer.allocUnsafe(totalBytes);
    }
    const first = items[0];
    invariant(first !== undefined, 'append of no records');
    const topic = first.prepared.message.topic;
    const queueId = first.prepared.message.queueId;
    const topicOffsets = this.queueOffsetsOf(topic);
    let nextQueueOffset = topicOffsets.get(queueId) ?? 0;
    // Store timestamps never go backwards, so that a time search over a queue stays a binary search.
    const storeTimestamp = Math.max(Date.now(), this.lastStoreTimestamp);
    this.lastStoreTimestamp = storeTimestamp;
    const startOffset = this.appendOffset;
    let firstQueueOffset = -1;
    const placement = this.placement;
    placement.storeTimestamp = storeTimestamp;
    for (const item of items) {
      const message = item.prepared.message;
      invariant(message.topic === topic && message.queueId === queueId, 'a batch goes to one queue');
      const tranType = transactionTypeOf(message.sysFlag);
      const inQueue =
        tranType !== MessageSysFlag.TransactionPreparedType && tranType !== MessageSysFlag.TransactionRollbackType;
      const queueOffset = inQueue ? nextQueueOffset++ : 0;
      if (firstQueueOffset < 0) firstQueueOffset = queueOffset;
      const commitLogOffset = this.appendOffset;
      placement.queueOffset = queueOffset;
      placement.commitLogOffset = commitLogOffset;
      const size = writeRecord(this.buffer, this.bufferUsed, item.prepared, placement);
      this.bufferUsed += size;
      this.appendOffset += size;
      this.pending.push({
        topic,
        queueId,
        queueOffset,
        commitLogOffset,
        size,
        tagsCode: item.tagsCode,
        indexKeys: item.indexKeys,
        storeTimestamp,
        inQueue,
        indexed: tranType !== MessageSysFlag.TransactionRollbackType,
      });
    }
    topicOffsets.set(queueId, nextQueueOffset);
    invariant(this.appendOffset <= segment.endOffset, 'records overran their segment');
    this.scheduleDrain();
    return {
      commitLogOffset: startOffset,
      endOffset: this.appendOffset,
      queueOffset: firstQueueOffset,
      storeTimestamp,
      wroteBytes: totalBytes,
    };
  }

  /**
   * Replication (replica side): appends records a master encoded, byte for byte, at appendOffset. The
   * caller (store/replication.ts) has checked them: whole records, stored at these offsets, ending
   * before the active segment's last BLANK_RECORD_MIN_BYTES. Queue offset counters move past the
   * records' own queue offsets, so that the log can take local puts after a promotion.
   */
  appendEncoded(bytes: Buffer, requests: readonly DispatchRequest[]): void {
    if (this.failure !== undefined) throw this.readOnlyError();
    const segment = this.activeSegment();
    invariant(segment !== undefined, 'replicated append before the CommitLog was positioned');
    invariant(
      this.appendOffset + bytes.length + BLANK_RECORD_MIN_BYTES <= segment.endOffset,
      'replicated records overrun their segment',
    );
    if (this.buffer.length - this.bufferUsed < bytes.length) {
      this.writeOut();
      if (this.buffer.length < bytes.length) this.buffer = Buffer.allocUnsafe(bytes.length);
    }
    bytes.copy(this.buffer, this.bufferUsed);
    this.bufferUsed += bytes.length;
    this.appendOffset += bytes.length;
    for (const request of requests) {
      if (request.inQueue) {
        const offsets = this.queueOffsetsOf(request.topic);
        offsets.set(request.queueId, Math.max(offsets.get(request.queueId) ?? 0, request.queueOffset + 1));
      }
      this.lastStoreTimestamp = Math.max(this.lastStoreTimestamp, request.storeTimestamp);
      this.pending.push(request);
    }
    this.scheduleDrain();
  }

  /** Replication (replica side): ends the active segment with a blank record, as the master's log did. */
  endSegmentForReplica(): void {
    if (this.failure !== undefined) throw this.readOnlyError();
    const segment = this.activeSegment();
    invariant(segment !== undefined, 'replicated roll before the CommitLog was positioned');
    this.rollSegment(segment);
  }

  /** Ends the segment with a blank record, writes it out and starts the next segment. */
  private rollSegment(segment: SegmentFile): SegmentFile {
    const bytesLeft = segment.endOffset - this.appendOffset;
    invariant(bytesLeft >= BLANK_RECORD_MIN_BYTES, 'segment end without room for a blank record');
    if (this.buffer.length - this.bufferUsed < BLANK_RECORD_MIN_BYTES) this.writeOut();
    writeBlankRecord(this.buffer, this.bufferUsed, bytesLeft);
    this.bufferUsed += BLANK_RECORD_MIN_BYTES;
    this.appendOffset = segment.endOffset;
    // The blank's bytes end where its 8 bytes end; the rest of the segment is zeros already.
    this.writeOut();
    invariant(this.failure === undefined, 'roll after a failed write');
    this.bufferStartOffset = segment.endOffset;
    this.writtenOffset = segment.endOffset;
    let next: SegmentFile;
    try {
      next = SegmentFile.create(this.options.io, this.options.dir, segment.endOffset, this.segmentBytes);
    } catch (err) {
      this.fail(err);
      throw new RbError(ErrorCode.StoreWriteFailed, `creating a CommitLog segment failed: ${String(err)}`, {
        cause: err,
      });
    }
    this.segments.push(next);
    return next;
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(this.drain);
  }

  /** One write of everything buffered, then hand the written records on. */
  private readonly drain = (): void => {
    this.drainScheduled = false;
    try {
      this.writeOut();
    } catch {
      // fail() has turned the log read-only and told the store; records written before still go on.
    }
    this.deliverWritten();
  };

  /** Writes and delivers everything buffered now (shutdown, tests). */
  drainNow(): void {
    this.writeOut();
    this.deliverWritten();
  }

  private deliverWritten(): void {
    if (this.written.length === 0) return;
    const batch = this.written;
    this.written = [];
    this.options.onWritten(batch);
  }

  /** Writes the buffer to its segment; on failure turns the log read-only and drops the buffer. */
  private writeOut(): void {
    if (this.bufferUsed === 0 || this.failure !== undefined || this.closed) return;
    const segment = this.segmentAt(this.bufferStartOffset);
    try {
      invariant(segment !== undefined, 'buffered bytes without a segment');
      this.writeCount++;
      segment.write(this.buffer, 0, this.bufferUsed, this.bufferStartOffset - segment.startOffset);
    } catch (err) {
      this.fail(err);
      throw new RbError(ErrorCode.StoreWriteFailed, `CommitLog write failed: ${String(err)}`, { cause: err });
    }
    segment.lastStoreTimestampMs = this.lastStoreTimestamp;
    this.writtenOffset = this.bufferStartOffset + this.bufferUsed;
    this.bufferStartOffset = this.writtenOffset;
    this.bufferUsed = 0;
    for (const request of this.pending) this.written.push(request);
    this.pending.length = 0;
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    // Appended but unwritten records are lost; their puts get the failure.
    this.pending.length = 0;
    this.bufferUsed = 0;
    this.appendOffset = this.writtenOffset;
    this.options.onWriteError(err);
  }

  /** Marks the log failed from outside (a failed fdatasync). */
  failFromFlush(err: unknown): void {
    if (this.failure === undefined) {
      this.failure = err;
      this.options.onWriteError(err);
    }
  }

  private readOnlyError(): RbError {
    return new RbError(ErrorCode.StoreReadOnly, 'the CommitLog is read-only after a write error', {
      cause: this.failure,
    });
  }

  /**
   * The `size` bytes at `commitLogOffset`, copied, or undefined when they are not all written bytes of
   * one live segment. Sequential readers (getMessage) pass `windowEndOffset`, the end of the records
   * they expect to read next: one read then fills a window up to it (at most 1 MiB) and later records
   * inside the window cost no syscall.
   */
  read(commitLogOffset: number, size: number, windowEndOffset?: number): Buffer | undefined {
    if (!Number.isSafeInteger(commitLogOffset) || !Number.isSafeInteger(size) || size <= 0) return undefined;
    if (commitLogOffset < this.minOffset() || commitLogOffset + size > this.writtenOffset) return undefined;
    const segment = this.segmentAt(commitLogOffset);
    if (segment === undefined || segment.isClosed || commitLogOffset + size > segment.endOffset) return undefined;
    if (windowEndOffset !== undefined && size <= READ_WINDOW_BYTES / 4) {
      if (
        this.windowSegment !== segment ||
        commitLogOffset < this.windowStartOffset ||
        commitLogOffset + size > this.windowStartOffset + this.window.length
      ) {
        this.fillWindow(segment, commitLogOffset, Math.max(windowEndOffset, commitLogOffset + size));
      }
      const at = commitLogOffset - this.windowStartOffset;
      if (at >= 0 && at + size <= this.window.length) return Buffer.from(this.window.subarray(at, at + size));
    }
    const target = Buffer.allocUnsafe(size);
    const read = segment.readInto(target, 0, size, commitLogOffset - segment.startOffset);
    return read === size ? target : undefined;
  }

  private fillWindow(segment: SegmentFile, commitLogOffset: number, windowEndOffset: number): void {
    const endOffset = Math.min(
      windowEndOffset,
      commitLogOffset + READ_WINDOW_BYTES,
      segment.endOffset,
      this.writtenOffset,
    );
    const window = Buffer.allocUnsafe(endOffset - commitLogOffset);
    const read = segment.readInto(window, 0, window.length, commitLogOffset - segment.startOffset);
    this.window = window.subarray(0, read);
    this.windowSegment = segment;
    this.windowStartOffset = commitLogOffset;
  }

  /** Deletes the oldest segment (retention); never the active one. */
  deleteOldestSegment(): SegmentFile | undefined {
    if (this.segments.length <= 1) return undefined;
    const oldest = this.segments.shift();
    if (oldest === undefined) return undefined;
    if (this.windowSegment === oldest) this.windowSegment = undefined;
    oldest.destroy();
    return oldest;
  }

  /** Closes the files; anything still buffered is dropped (shutdown drains first). */
  close(): void {
    this.closed = true;
    this.pending.length = 0;
    this.bufferUsed = 0;
    for (const segment of this.segments) segment.close();
    this.windowSegment = undefined;
  }
}
