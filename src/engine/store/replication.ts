/**
 * The replica side of CommitLog replication (RocketMQ HAClient.dispatchReadRequest + appendToCommitLog,
 * with the checks RocketMQ leaves to the reput service done up front). It owns the stream position and
 * the bytes of a record split across chunks; it checks every whole record (boundaries, magic, CRCs, the
 * stored CommitLog offset, segment ends, blank records) before handing it to the CommitLog, which
 * writes and dispatches it like a local put. Transport and retries are the broker's (broker/ha/).
 *
 * A master streams its segments as they are on disk: a segment ends with a blank record followed by
 * zeros up to the segment end. The replica writes the blank record, rolls to its next segment and skips
 * the zeros, which may arrive in later chunks (the stream position then trails the CommitLog's).
 */
import { BLANK_RECORD_MIN_BYTES, checkRecord } from '../common/message-record.js';
import type { ReplicaAppendResult } from './api.js';
import type { CommitLog, DispatchRequest } from './commit-log.js';
import { recordCommitLogOffset } from './record-view.js';
import { dispatchRequestOf } from './recovery.js';

export class ReplicaStreamWriter {
  /** Stream offset one past the last byte received (pending bytes included). */
  private streamEndOffset: number | undefined;
  /** Received bytes of a record not yet complete; they end at streamEndOffset. */
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly commitLog: CommitLog,
    private readonly verifyCrc: boolean,
  ) {}

  /** The stream offset the next chunk must start at. */
  expectedOffset(): number {
    return this.streamEndOffset ?? this.commitLog.appendOffset;
  }

  /** Forgets a partial record: the next chunk must start at the CommitLog's append offset. */
  reset(): void {
    this.streamEndOffset = undefined;
    this.pending = Buffer.alloc(0);
  }

  /** See MessageStore.appendReplicated. Writes the accepted records out (and dispatches them) before returning. */
  append(commitLogOffset: number, data: Buffer): ReplicaAppendResult {
    // A new connection starts over where the log ends, dropping a partial record of the old one.
    if (commitLogOffset === this.commitLog.appendOffset && commitLogOffset !== this.expectedOffset()) this.reset();
    const expected = this.expectedOffset();
    if (commitLogOffset !== expected) {
      return { ok: false, reason: `chunk at CommitLog offset ${commitLogOffset}, expected ${expected}` };
    }
    const bytes = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    const bytesStartOffset = expected - this.pending.length;
    const result = this.walk(bytes, bytesStartOffset);
    this.commitLog.drainNow();
    if (!result.ok) {
      this.reset();
      return result;
    }
    this.streamEndOffset = commitLogOffset + data.length;
    return { ok: true, commitLogMaxOffset: this.commitLog.writtenOffset };
  }

  /** Appends the whole records of `bytes` (which start at `startOffset`); keeps a partial tail pending. */
  private walk(bytes: Buffer, startOffset: number): ReplicaAppendResult {
    const log = this.commitLog;
    let at = 0;
    // Zeros after a blank record: the CommitLog already moved past them.
    if (startOffset < log.appendOffset) at = Math.min(log.appendOffset - startOffset, bytes.length);
    let runStart = at;
    let requests: DispatchRequest[] = [];
    const flushRun = (): void => {
      if (at > runStart) log.appendEncoded(bytes.subarray(runStart, at), requests);
      requests = [];
    };
    while (at < bytes.length) {
      const position = startOffset + at;
      const segment = log.activeSegment();
      if (segment === undefined || position < segment.startOffset || position >= segment.endOffset) {
        flushRun();
        return { ok: false, reason: `no active segment holds CommitLog offset ${position}` };
      }
      const leftInSegment = segment.endOffset - position;
      const available = bytes.length - at;
      if (available >= 8 && bytes.readInt32BE(at) > leftInSegment) {
        flushRun();
        return {
          ok: false,
          reason: `record of ${bytes.readInt32BE(at)} bytes at ${position} crosses the segment end`,
        };
      }
      const check = checkRecord(bytes, at, available, this.verifyCrc);
      if (check.kind === 'incomplete') break;
      if (check.kind === 'corrupt') {
        flushRun();
        return { ok: false, reason: `corrupt record at ${position}: ${check.reason}` };
      }
      if (check.kind === 'blank') {
        flushRun();
        if (check.size !== leftInSegment) {
          return {
            ok: false,
            reason: `blank record of ${check.size} bytes at ${position} where ${leftInSegment} are left in the segment (segment sizes differ?)`,
          };
        }
        log.endSegmentForReplica();
        at = Math.min(at + check.size, bytes.length);
        runStart = at;
        continue;
      }
      const storedOffset = recordCommitLogOffset(bytes, at);
      if (storedOffset !== position) {
        flushRun();
        return { ok: false, reason: `record at ${position} says it is at ${storedOffset}` };
      }
      if (check.size + BLANK_RECORD_MIN_BYTES > leftInSegment) {
        flushRun();
        return { ok: false, reason: `record at ${position} leaves no room for the segment's blank record` };
      }
      requests.push(dispatchRequestOf(bytes, at, position, check.size));
      at += check.size;
    }
    flushRun();
    this.pending = Buffer.from(bytes.subarray(at));
    return { ok: true, commitLogMaxOffset: log.appendOffset };
  }
}
