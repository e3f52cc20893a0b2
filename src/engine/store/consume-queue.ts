/**
 * ConsumeQueue: the per topic/queue index of the CommitLog (RocketMQ ConsumeQueue.java). Unit number
 * `queueOffset` sits at byte `queueOffset * 20` of the queue, spread over fixed-size files under
 * `<root>/<topic>/<queueId>/`. This module owns those files: appending units in batches, reading them
 * back, cutting them after a CommitLog truncation, deleting expired files and finding the end after a
 * crash. It does not decide what to append: the store's dispatcher does, and re-dispatches from the
 * CommitLog whatever a crash lost here (units are derived data).
 *
 * Two ways to flush: flush() writes and fdatasyncs on the calling thread (shutdown, recovery);
 * flushAsync() writes the few buffered units at once and leaves the fdatasyncs to libuv's thread pool,
 * so that the store's periodic flush does not stall puts and pulls (RocketMQ flushes ConsumeQueues on
 * their own thread). A file whose fdatasync is in flight keeps its descriptor open until it completes.
 */
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InvariantError, invariant } from '../common/assert.js';
import { ErrorCode, RbError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { fsyncDirectory } from '../common/atomic-file.js';
import { nodeFileIo } from './file-io.js';

const log = createLogger('consume-queue');

/** One unit: commitLogOffset 8 | size 4 | tagsCode 8, big-endian (ConsumeQueue.CQ_STORE_UNIT_SIZE). */
export const CQ_UNIT_BYTES = 20;

/** A ConsumeQueue file is named by its first byte within the queue, 20 digits (UtilAll.offset2FileName). */
const FILE_NAME_DIGITS = 20;
const FILE_NAME_PATTERN = /^\d{20}$/;
/** Units buffered in memory before one positioned write; flush() writes the rest. */
const WRITE_BATCH_UNITS = 128;
/** Units read per positioned read when scanning or serving getUnits. */
const READ_CHUNK_UNITS = 4096;
/**
 * RocketMQ fillPreBlank marks the units before a queue's first real unit with commitLogOffset 0,
 * size Integer.MAX_VALUE, tagsCode 0, so that a scan does not take them for the end of the queue.
 */
const FILLER_SIZE = 0x7fffffff;
const TWO_POW_32 = 4294967296;

export interface ConsumeQueueUnit {
  queueOffset: number;
  /** Where the record starts in the CommitLog (bytes). */
  commitLogOffset: number;
  /** Record size in bytes. */
  size: number;
  /** Tag hash code (Java String.hashCode sign-extended), or the delivery time for delayed messages. */
  tagsCode: number;
}

export interface ConsumeQueueOptions {
  /** The queue's directory, `<root>/<topic>/<queueId>`. */
  dir: string;
  topic: string;
  queueId: number;
  unitsPerFile: number;
}

interface QueueFile {
  /** Queue offset of the file's first unit. */
  startQueueOffset: number;
  path: string;
  /** Opened on first use, closed by close() or when the file is deleted. */
  fd: number | undefined;
  /** fdatasyncs of `fd` running on the thread pool. */
  syncsInFlight: number;
  /** A descriptor released while a sync was in flight: closed when the last one completes. */
  fdToClose: number | undefined;
}

function queueFile(startQueueOffset: number, path: string): QueueFile {
  return { startQueueOffset, path, fd: undefined, syncsInFlight: 0, fdToClose: undefined };
}

/** Closes the file's descriptor now, or when its in-flight fdatasync completes. */
function releaseFd(file: QueueFile): void {
  if (file.fd === undefined) return;
  if (file.syncsInFlight > 0) {
    if (file.fdToClose !== undefined) closeSync(file.fdToClose);
    file.fdToClose = file.fd;
  } else {
    closeSync(file.fd);
  }
  file.fd = undefined;
}

/** fdatasync on the thread pool; the descriptor stays open until it completes (releaseFd). */
async function datasyncOnPool(file: QueueFile, fd: number): Promise<void> {
  file.syncsInFlight++;
  try {
    await nodeFileIo.fdatasync(fd);
  } finally {
    file.syncsInFlight--;
    if (file.syncsInFlight === 0 && file.fdToClose !== undefined) {
      closeSync(file.fdToClose);
      file.fdToClose = undefined;
    }
  }
}

/** fsyncDirectory on the thread pool. */
async function fsyncDirectoryOnPool(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Scratch for positioned reads; the store is single-threaded and every read decodes before returning. */
const readScratch = Buffer.alloc(READ_CHUNK_UNITS * CQ_UNIT_BYTES);
const zeroChunk = Buffer.alloc(READ_CHUNK_UNITS * CQ_UNIT_BYTES);

function readInt64(buf: Buffer, at: number): number {
  return buf.readInt32BE(at) * TWO_POW_32 + buf.readUInt32BE(at + 4);
}

function writeInt64(buf: Buffer, at: number, value: number): void {
  buf.writeInt32BE(Math.floor(value / TWO_POW_32), at);
  buf.writeUInt32BE(value >>> 0, at + 4);
}

/** Writes one unit at `at` (layout above). */
function encodeUnit(buf: Buffer, at: number, commitLogOffset: number, size: number, tagsCode: number): void {
  writeInt64(buf, at, commitLogOffset);
  buf.writeInt32BE(size, at + 8);
  writeInt64(buf, at + 12, tagsCode);
}

function decodeUnit(buf: Buffer, at: number, queueOffset: number): ConsumeQueueUnit {
  return {
    queueOffset,
    commitLogOffset: readInt64(buf, at),
    size: buf.readInt32BE(at + 8),
    tagsCode: readInt64(buf, at + 12),
  };
}

/** RocketMQ's validity test when recovering: a unit with a positive size and offset is written. */
function isWrittenUnit(buf: Buffer, at: number): boolean {
  return buf.readInt32BE(at + 8) > 0 && buf.readInt32BE(at) >= 0;
}

function isFillerUnit(buf: Buffer, at: number): boolean {
  return buf.readInt32BE(at + 8) === FILLER_SIZE && readInt64(buf, at) === 0;
}

function isFiller(unit: ConsumeQueueUnit): boolean {
  return unit.size === FILLER_SIZE && unit.commitLogOffset === 0;
}

function writeFully(fd: number, buf: Buffer, offset: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = writeSync(fd, buf, offset + done, length - done, position + done);
    invariant(n > 0, 'writeSync wrote nothing');
    done += n;
  }
}

/** Reads up to `length` bytes; returns how many were read (fewer only at the end of the file). */
function readFully(fd: number, buf: Buffer, offset: number, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, offset + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

function writeFailed(what: string, err: unknown): RbError {
  return new RbError(ErrorCode.StoreWriteFailed, `${what}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}

/**
 * One topic/queue's ConsumeQueue. Units are appended in memory and written in batches of
 * WRITE_BATCH_UNITS (or by flush()), so a put costs no syscall; reads see the buffered units too.
 * Memory per queue is one batch buffer; older units are read from the files with positioned reads.
 */
export class ConsumeQueue {
  readonly topic: string;
  readonly queueId: number;
  private readonly dir: string;
  private readonly unitsPerFile: number;
  private readonly fileBytes: number;
  private files: QueueFile[] = [];
  private minOffset = 0;
  /** Units below this queue offset have been written to the files (not necessarily synced). */
  private writtenMaxOffset = 0;
  /** Units [writtenMaxOffset, writtenMaxOffset + pendingCount) live only in `pending`. */
  private readonly pending: Buffer;
  private pendingCount = 0;
  private readonly unsyncedFiles = new Set<QueueFile>();
  private directoryDirty = false;
  /** The flushAsync() in progress, if any; the next one runs after it. */
  private asyncFlush: Promise<void> | undefined;
  private last: ConsumeQueueUnit | undefined;
  private closed = false;

  /** `dir` is `<root>/<topic>/<queueId>`; it is created with the first file. */
  constructor(options: ConsumeQueueOptions) {
    invariant(
      Number.isSafeInteger(options.unitsPerFile) && options.unitsPerFile > 0,
      `unitsPerFile must be a positive integer, got ${options.unitsPerFile}`,
    );
    this.dir = options.dir;
    this.topic = options.topic;
    this.queueId = options.queueId;
    this.unitsPerFile = options.unitsPerFile;
    this.fileBytes = options.unitsPerFile * CQ_UNIT_BYTES;
    this.pending = Buffer.alloc(Math.min(WRITE_BATCH_UNITS, options.unitsPerFile) * CQ_UNIT_BYTES);
  }

  /**
   * Opens the existing files and finds the last written unit: the first unit whose size is not
   * positive ends the queue (a crash leaves zeros where units were never written). Stale bytes past
   * the end are zeroed and files past it deleted, so that they cannot reappear after later appends.
   * minQueueOffset() is then the first unit of the first file; the store corrects it with
   * deleteExpired(commitLogMinOffset). Throws RbError on files that do not fit `unitsPerFile`.
   */
  load(): void {
    this.closeFiles();
    this.files = [];
    this.minOffset = 0;
    this.writtenMaxOffset = 0;
    this.pendingCount = 0;
    this.last = undefined;
    if (!existsSync(this.dir)) return;

    const starts: number[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!FILE_NAME_PATTERN.test(name)) {
        log.warn({ dir: this.dir, name }, 'ignoring a file that is not a consume queue file');
        continue;
      }
      const startByte = Number(name);
      if (startByte % this.fileBytes !== 0) {
        throw new RbError(
          ErrorCode.ConfigInvalid,
          `consume queue file ${join(this.dir, name)} does not start at a multiple of ${this.fileBytes} bytes ` +
            `(${this.unitsPerFile} units per file); was consumeQueueUnitsPerFile changed?`,
        );
      }
      starts.push(startByte / CQ_UNIT_BYTES);
    }
    starts.sort((a, b) => a - b);
    for (const [i, start] of starts.entries()) {
      const previous = starts[i - 1];
      if (previous !== undefined && previous + this.unitsPerFile !== start) {
        throw new RbError(
          ErrorCode.CorruptRecord,
          `consume queue ${this.dir} misses the file between queue offsets ${previous + this.unitsPerFile} and ${start}`,
        );
      }
      this.files.push(queueFile(start, join(this.dir, this.fileName(start))));
    }
    if (this.files.length === 0) return;
    this.checkFileSizes();

    // Step back over trailing files that hold no unit at all (created, then a crash).
    let endFileIndex = this.files.length - 1;
    while (endFileIndex > 0 && !this.firstUnitWritten(this.files[endFileIndex]!)) endFileIndex--;
    const endFile = this.files[endFileIndex]!;
    const endOffset = this.scanForEnd(endFile);
    for (const stale of this.files.splice(endFileIndex + 1)) {
      log.warn({ path: stale.path }, 'deleting a consume queue file past the last written unit');
      this.deleteFile(stale);
    }
    this.writtenMaxOffset = endOffset;
    this.minOffset = Math.min(this.firstNonFillerOffset(), endOffset);
    this.last = this.readLastUnit();
  }

  /** The first readable unit. */
  minQueueOffset(): number {
    return this.minOffset;
  }

  /** One past the last unit: the queue offset the next putUnit must carry. */
  maxQueueOffset(): number {
    return this.writtenMaxOffset + this.pendingCount;
  }

  /**
   * Appends a unit at `unit.queueOffset`. Returns false, writing nothing, for a unit below the max
   * (a replay after recovery). A unit past the max is a gap and throws, except as the first unit of a
   * queue with no files, which starts there (RocketMQ fillPreBlank).
   */
  putUnit(unit: ConsumeQueueUnit): boolean {
    this.checkOpen();
    // Runs per stored message: the messages are formatted only when a check fails.
    if (!(Number.isSafeInteger(unit.queueOffset) && unit.queueOffset >= 0)) {
      throw new InvariantError(`bad queueOffset ${unit.queueOffset}`);
    }
    if (!(Number.isSafeInteger(unit.commitLogOffset) && unit.commitLogOffset >= 0)) {
      throw new InvariantError(`bad commitLogOffset ${unit.commitLogOffset}`);
    }
    if (!(Number.isInteger(unit.size) && unit.size > 0 && unit.size < FILLER_SIZE)) {
      throw new InvariantError(`bad unit size ${unit.size}`);
    }
    if (!Number.isSafeInteger(unit.tagsCode)) throw new InvariantError(`bad tagsCode ${unit.tagsCode}`);
    const maxOffset = this.maxQueueOffset();
    if (unit.queueOffset < maxOffset) return false;
    if (unit.queueOffset > maxOffset) {
      invariant(
        this.files.length === 0 && maxOffset === 0,
        `consume queue ${this.topic}/${this.queueId}: unit at queue offset ${unit.queueOffset} leaves a gap after ${maxOffset}`,
      );
      this.minOffset = unit.queueOffset;
      this.writtenMaxOffset = unit.queueOffset;
    }
    const last = this.last;
    if (last !== undefined && unit.commitLogOffset < last.commitLogOffset + last.size) {
      throw new InvariantError(
        `consume queue ${this.topic}/${this.queueId}: unit at commitLogOffset ${unit.commitLogOffset} ` +
          `overlaps the previous record ending at ${last.commitLogOffset + last.size}`,
      );
    }
    encodeUnit(this.pending, this.pendingCount * CQ_UNIT_BYTES, unit.commitLogOffset, unit.size, unit.tagsCode);
    this.pendingCount++;
    this.last = {
      queueOffset: unit.queueOffset,
      commitLogOffset: unit.commitLogOffset,
      size: unit.size,
      tagsCode: unit.tagsCode,
    };
    if (this.pendingCount * CQ_UNIT_BYTES === this.pending.length) this.writePending();
    return true;
  }

  /** Up to `maxUnits` units from `fromQueueOffset`, in order; [] outside [min, max). */
  getUnits(fromQueueOffset: number, maxUnits: number): ConsumeQueueUnit[] {
    const maxOffset = this.maxQueueOffset();
    if (!Number.isSafeInteger(fromQueueOffset) || fromQueueOffset < this.minOffset || fromQueueOffset >= maxOffset) {
      return [];
    }
    if (!(maxUnits > 0)) return [];
    const endOffset = Math.min(maxOffset, fromQueueOffset + Math.floor(maxUnits));
    const units: ConsumeQueueUnit[] = [];
    let queueOffset = fromQueueOffset;
    while (queueOffset < endOffset && queueOffset < this.writtenMaxOffset) {
      const file = this.fileFor(queueOffset);
      const count = Math.min(
        endOffset,
        this.writtenMaxOffset,
        file.startQueueOffset + this.unitsPerFile,
        queueOffset + READ_CHUNK_UNITS,
      );
      const chunk = this.readUnits(file, queueOffset, count - queueOffset);
      for (let i = 0; queueOffset < count; i++, queueOffset++) {
        const unit = decodeUnit(chunk, i * CQ_UNIT_BYTES, queueOffset);
        if (unit.size <= 0) {
          throw new RbError(
            ErrorCode.CorruptRecord,
            `consume queue ${this.topic}/${this.queueId}: no unit at queue offset ${queueOffset} in ${file.path}`,
          );
        }
        units.push(unit);
      }
    }
    for (; queueOffset < endOffset; queueOffset++) {
      units.push(decodeUnit(this.pending, (queueOffset - this.writtenMaxOffset) * CQ_UNIT_BYTES, queueOffset));
    }
    return units;
  }

  /** The unit just below maxQueueOffset(), even when expiry moved the min past it. */
  lastUnit(): ConsumeQueueUnit | undefined {
    return this.last === undefined ? undefined : { ...this.last };
  }

  /**
   * Drops the units whose record ends past `commitLogEndOffset` (the CommitLog was cut there). Units
   * are in CommitLog order, so they are a suffix. The cut is written and synced at once.
   */
  truncateByCommitLogOffset(commitLogEndOffset: number): void {
    this.checkOpen();
    const endsPast = (buf: Buffer, at: number): boolean =>
      !isFillerUnit(buf, at) && readInt64(buf, at) + buf.readInt32BE(at + 8) > commitLogEndOffset;
    while (this.pendingCount > 0 && endsPast(this.pending, (this.pendingCount - 1) * CQ_UNIT_BYTES)) {
      this.pendingCount--;
    }
    if (this.pendingCount === 0) {
      const oldWrittenMax = this.writtenMaxOffset;
      let newWrittenMax = oldWrittenMax;
      const firstOffset = this.files[0]?.startQueueOffset ?? newWrittenMax;
      scan: while (newWrittenMax > firstOffset) {
        const file = this.fileFor(newWrittenMax - 1);
        const from = Math.max(file.startQueueOffset, newWrittenMax - READ_CHUNK_UNITS);
        const chunk = this.readUnits(file, from, newWrittenMax - from);
        for (let i = newWrittenMax - from - 1; i >= 0; i--) {
          if (!endsPast(chunk, i * CQ_UNIT_BYTES)) break scan;
          newWrittenMax--;
        }
      }
      if (newWrittenMax < oldWrittenMax) this.cutFilesAt(newWrittenMax, oldWrittenMax);
    }
    this.minOffset = Math.min(this.minOffset, this.maxQueueOffset());
    this.last = this.pendingCount > 0 ? this.lastPendingUnit() : this.readLastUnit();
    this.flush();
  }

  /**
   * Deletes whole files whose last unit starts below `commitLogMinOffset` (never the newest file, which
   * keeps the max offset), then moves the min to the first unit at or above it (possibly mid-file).
   */
  deleteExpired(commitLogMinOffset: number): void {
    this.checkOpen();
    while (this.files.length > 1) {
      const first = this.files[0]!;
      const lastInFile = this.readUnits(first, first.startQueueOffset + this.unitsPerFile - 1, 1);
      if (readInt64(lastInFile, 0) >= commitLogMinOffset && !isFillerUnit(lastInFile, 0)) break;
      this.files.shift();
      this.deleteFile(first);
      log.info({ path: first.path, commitLogMinOffset }, 'deleted an expired consume queue file');
    }
    // Binary search: units are in CommitLog order; fillers count as below everything.
    let low = Math.max(this.minOffset, this.files[0]?.startQueueOffset ?? this.minOffset);
    let high = this.maxQueueOffset();
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const unit = this.readUnitAt(middle);
      if (isFiller(unit) || unit.commitLogOffset < commitLogMinOffset) low = middle + 1;
      else high = middle;
    }
    this.minOffset = low;
  }

  /** Writes the buffered units and fdatasyncs every file written since the last flush. */
  flush(): void {
    if (this.closed) return;
    this.writePending();
    try {
      for (const file of this.unsyncedFiles) {
        if (file.fd !== undefined) fdatasyncSync(file.fd);
      }
      this.unsyncedFiles.clear();
      if (this.directoryDirty) {
        fsyncDirectory(this.dir);
        this.directoryDirty = false;
      }
    } catch (err) {
      throw writeFailed(`consume queue ${this.dir}: fdatasync failed`, err);
    }
  }

  /**
   * flush() without blocking: the buffered units are written now (one positioned write of at most a
   * batch), the fdatasyncs of the files written since the last flush run on the thread pool, one file
   * at a time. Calls are chained, so that two of them never sync the same files at once. When the
   * promise resolves, every unit appended before the call is on disk; on a failure the files stay
   * marked unsynced and the promise rejects with RbError StoreWriteFailed.
   */
  flushAsync(): Promise<void> {
    const previous = this.asyncFlush;
    const flushed = (previous === undefined ? this.syncUnsynced() : previous.then(() => this.syncUnsynced())).finally(
      () => {
        if (this.asyncFlush === flushed) this.asyncFlush = undefined;
      },
    );
    this.asyncFlush = flushed;
    return flushed;
  }

  private async syncUnsynced(): Promise<void> {
    if (this.closed) return;
    this.writePending();
    // A file leaves the set just before its sync, so that a write meanwhile puts it back for the
    // next flush, and a flush() meanwhile (which syncs the whole set) leaves nothing to do here.
    for (const file of [...this.unsyncedFiles]) {
      if (!this.unsyncedFiles.delete(file) || file.fd === undefined) continue;
      try {
        await datasyncOnPool(file, file.fd);
      } catch (err) {
        if (this.files.includes(file)) this.unsyncedFiles.add(file);
        throw writeFailed(`consume queue ${this.dir}: fdatasync failed`, err);
      }
    }
    if (this.directoryDirty) {
      this.directoryDirty = false;
      try {
        await fsyncDirectoryOnPool(this.dir);
      } catch (err) {
        this.directoryDirty = true;
        throw writeFailed(`consume queue ${this.dir}: directory fsync failed`, err);
      }
    }
  }

  /** Flushes and closes the files; the queue cannot be written afterwards. */
  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closeFiles();
      this.closed = true;
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new RbError(ErrorCode.StoreClosed, `consume queue ${this.topic}/${this.queueId} is closed`);
  }

  private fileName(startQueueOffset: number): string {
    return String(startQueueOffset * CQ_UNIT_BYTES).padStart(FILE_NAME_DIGITS, '0');
  }

  private fileFor(queueOffset: number): QueueFile {
    const first = this.files[0];
    invariant(first !== undefined, `consume queue ${this.dir} has no file for queue offset ${queueOffset}`);
    const file = this.files[Math.floor((queueOffset - first.startQueueOffset) / this.unitsPerFile)];
    invariant(
      file !== undefined && queueOffset >= file.startQueueOffset,
      `consume queue ${this.dir} has no file for queue offset ${queueOffset}`,
    );
    return file;
  }

  private fdOf(file: QueueFile): number {
    file.fd ??= openSync(file.path, 'r+');
    return file.fd;
  }

  /** Reads `count` (at most READ_CHUNK_UNITS) units of one file into the scratch buffer. */
  private readUnits(file: QueueFile, fromQueueOffset: number, count: number): Buffer {
    invariant(count > 0 && count <= READ_CHUNK_UNITS, `bad unit read count ${count}`);
    const length = count * CQ_UNIT_BYTES;
    const position = (fromQueueOffset - file.startQueueOffset) * CQ_UNIT_BYTES;
    invariant(position >= 0 && position + length <= this.fileBytes, `unit read outside ${file.path}`);
    const read = readFully(this.fdOf(file), readScratch, 0, length, position);
    // A file cut short by someone else reads as zeros: no unit there.
    if (read < length) readScratch.fill(0, read, length);
    return readScratch.subarray(0, length);
  }

  private readUnitAt(queueOffset: number): ConsumeQueueUnit {
    if (queueOffset >= this.writtenMaxOffset) {
      return decodeUnit(this.pending, (queueOffset - this.writtenMaxOffset) * CQ_UNIT_BYTES, queueOffset);
    }
    return decodeUnit(this.readUnits(this.fileFor(queueOffset), queueOffset, 1), 0, queueOffset);
  }

  private lastPendingUnit(): ConsumeQueueUnit {
    return decodeUnit(this.pending, (this.pendingCount - 1) * CQ_UNIT_BYTES, this.maxQueueOffset() - 1);
  }

  /** The unit at writtenMaxOffset - 1 when it is a real unit in a file we hold. */
  private readLastUnit(): ConsumeQueueUnit | undefined {
    const first = this.files[0];
    if (first === undefined || this.writtenMaxOffset <= first.startQueueOffset) return undefined;
    const unit = this.readUnitAt(this.writtenMaxOffset - 1);
    return isFiller(unit) || unit.size <= 0 ? undefined : unit;
  }

  /** Every file has the configured size; only the newest may be short (a crash while creating it). */
  private checkFileSizes(): void {
    for (const [i, file] of this.files.entries()) {
      const sizeBytes = statSync(file.path).size;
      if (sizeBytes === this.fileBytes) continue;
      if (sizeBytes < this.fileBytes && i === this.files.length - 1) {
        log.warn({ path: file.path, sizeBytes, expectedBytes: this.fileBytes }, 'extending a short consume queue file');
        ftruncateSync(this.fdOf(file), this.fileBytes);
        continue;
      }
      throw new RbError(
        ErrorCode.CorruptRecord,
        `consume queue file ${file.path} is ${sizeBytes} bytes, expected ${this.fileBytes} ` +
          `(${this.unitsPerFile} units per file); was consumeQueueUnitsPerFile changed?`,
      );
    }
  }

  private firstUnitWritten(file: QueueFile): boolean {
    return isWrittenUnit(this.readUnits(file, file.startQueueOffset, 1), 0);
  }

  /**
   * Finds the first unwritten unit of `file`; if any bytes past it are not zero (a torn tail), zeroes
   * them so that stale units cannot rejoin the queue once the gap before them is written again.
   */
  private scanForEnd(file: QueueFile): number {
    const fileEnd = file.startQueueOffset + this.unitsPerFile;
    let endOffset: number | undefined;
    let staleTail = false;
    for (let from = file.startQueueOffset; from < fileEnd && !staleTail; from += READ_CHUNK_UNITS) {
      const count = Math.min(READ_CHUNK_UNITS, fileEnd - from);
      const chunk = this.readUnits(file, from, count);
      let i = 0;
      if (endOffset === undefined) {
        while (i < count && isWrittenUnit(chunk, i * CQ_UNIT_BYTES)) i++;
        if (i < count) endOffset = from + i;
      }
      if (endOffset !== undefined) {
        const tail = chunk.subarray(i * CQ_UNIT_BYTES);
        staleTail = !tail.equals(zeroChunk.subarray(0, tail.length));
      }
    }
    const end = endOffset ?? fileEnd;
    if (staleTail) {
      log.warn({ path: file.path, queueOffset: end }, 'zeroing stale consume queue units past the last written unit');
      this.zeroUnits(file, end, fileEnd);
      this.flush();
    }
    return end;
  }

  private firstNonFillerOffset(): number {
    const first = this.files[0]!;
    const fileEnd = first.startQueueOffset + this.unitsPerFile;
    for (let from = first.startQueueOffset; from < fileEnd; from += READ_CHUNK_UNITS) {
      const count = Math.min(READ_CHUNK_UNITS, fileEnd - from);
      const chunk = this.readUnits(first, from, count);
      for (let i = 0; i < count; i++) {
        if (!isFillerUnit(chunk, i * CQ_UNIT_BYTES)) return from + i;
      }
    }
    return fileEnd;
  }

  private zeroUnits(file: QueueFile, fromQueueOffset: number, toQueueOffset: number): void {
    const fd = this.fdOf(file);
    try {
      for (let from = fromQueueOffset; from < toQueueOffset; from += READ_CHUNK_UNITS) {
        const count = Math.min(READ_CHUNK_UNITS, toQueueOffset - from);
        writeFully(fd, zeroChunk, 0, count * CQ_UNIT_BYTES, (from - file.startQueueOffset) * CQ_UNIT_BYTES);
      }
    } catch (err) {
      throw writeFailed(`consume queue ${file.path}: write failed`, err);
    }
    this.unsyncedFiles.add(file);
  }

  /** Removes units [newWrittenMax, oldWrittenMax) from the files: zero them, delete whole files past. */
  private cutFilesAt(newWrittenMax: number, oldWrittenMax: number): void {
    while (this.files.length > 0) {
      const file = this.files[this.files.length - 1]!;
      if (file.startQueueOffset <= newWrittenMax) {
        this.zeroUnits(file, newWrittenMax, Math.min(oldWrittenMax, file.startQueueOffset + this.unitsPerFile));
        break;
      }
      this.files.pop();
      this.deleteFile(file);
    }
    this.writtenMaxOffset = newWrittenMax;
  }

  private deleteFile(file: QueueFile): void {
    releaseFd(file);
    this.unsyncedFiles.delete(file);
    unlinkSync(file.path);
    this.directoryDirty = true;
  }

  /** The file for a unit being written: the newest one or a new one after it. */
  private fileForWrite(queueOffset: number): QueueFile {
    const newest = this.files[this.files.length - 1];
    if (newest !== undefined && queueOffset < newest.startQueueOffset + this.unitsPerFile) return newest;
    const startQueueOffset = Math.floor(queueOffset / this.unitsPerFile) * this.unitsPerFile;
    invariant(
      newest === undefined || newest.startQueueOffset + this.unitsPerFile === startQueueOffset,
      `consume queue ${this.dir}: a new file at queue offset ${startQueueOffset} would leave a gap`,
    );
    if (newest === undefined) {
      // New directories must reach the disk too, or the files in them may vanish after a power loss.
      const created = mkdirSync(this.dir, { recursive: true });
      if (created !== undefined) {
        fsyncDirectory(dirname(created));
        if (dirname(this.dir) !== dirname(created)) fsyncDirectory(dirname(this.dir));
      }
    }
    const file = queueFile(startQueueOffset, join(this.dir, this.fileName(startQueueOffset)));
    // 'w+' truncates: nothing of an older file with this name may survive into the new one.
    file.fd = openSync(file.path, 'w+');
    ftruncateSync(file.fd, this.fileBytes);
    this.files.push(file);
    this.directoryDirty = true;
    if (startQueueOffset < this.writtenMaxOffset) {
      invariant(this.files.length === 1, `consume queue ${this.dir}: fillers outside the first file`);
      this.writeFillers(file, startQueueOffset, this.writtenMaxOffset);
    }
    return file;
  }

  private writeFillers(file: QueueFile, fromQueueOffset: number, toQueueOffset: number): void {
    const chunk = Buffer.alloc(Math.min(READ_CHUNK_UNITS, toQueueOffset - fromQueueOffset) * CQ_UNIT_BYTES);
    for (let at = 0; at < chunk.length; at += CQ_UNIT_BYTES) encodeUnit(chunk, at, 0, FILLER_SIZE, 0);
    for (let from = fromQueueOffset; from < toQueueOffset; from += READ_CHUNK_UNITS) {
      const count = Math.min(READ_CHUNK_UNITS, toQueueOffset - from);
      writeFully(file.fd!, chunk, 0, count * CQ_UNIT_BYTES, (from - file.startQueueOffset) * CQ_UNIT_BYTES);
    }
  }

  /** Writes the buffered units at their positions, splitting at file boundaries. */
  private writePending(): void {
    if (this.pendingCount === 0) return;
    try {
      let written = 0;
      while (written < this.pendingCount) {
        const queueOffset = this.writtenMaxOffset + written;
        const file = this.fileForWrite(queueOffset);
        const count = Math.min(this.pendingCount - written, file.startQueueOffset + this.unitsPerFile - queueOffset);
        writeFully(
          this.fdOf(file),
          this.pending,
          written * CQ_UNIT_BYTES,
          count * CQ_UNIT_BYTES,
          (queueOffset - file.startQueueOffset) * CQ_UNIT_BYTES,
        );
        this.unsyncedFiles.add(file);
        written += count;
      }
    } catch (err) {
      if (err instanceof RbError || err instanceof InvariantError) throw err;
      throw writeFailed(`consume queue ${this.dir}: write failed`, err);
    }
    this.writtenMaxOffset += this.pendingCount;
    this.pendingCount = 0;
  }

  private closeFiles(): void {
    for (const file of this.files) releaseFd(file);
  }
}

export interface ConsumeQueueTableOptions {
  /** `<storePath>/consumequeue`. */
  rootDir: string;
  unitsPerFile: number;
}

const QUEUE_ID_PATTERN = /^\d{1,9}$/;

/** Every ConsumeQueue of the store, one per topic/queueId under `<rootDir>/<topic>/<queueId>/`. */
export class ConsumeQueueTable {
  private readonly rootDir: string;
  private readonly unitsPerFile: number;
  private readonly queuesByTopic = new Map<string, Map<number, ConsumeQueue>>();

  constructor(options: ConsumeQueueTableOptions) {
    this.rootDir = options.rootDir;
    this.unitsPerFile = options.unitsPerFile;
  }

  /** Loads every queue directory found; entries that are not `<topic>/<number>` dirs are logged and skipped. */
  load(): void {
    if (!existsSync(this.rootDir)) return;
    for (const topicEntry of readdirSync(this.rootDir, { withFileTypes: true })) {
      if (!topicEntry.isDirectory()) {
        log.warn(
          { rootDir: this.rootDir, name: topicEntry.name },
          'ignoring a non-directory in the consume queue root',
        );
        continue;
      }
      const topic = topicEntry.name;
      for (const queueEntry of readdirSync(join(this.rootDir, topic), { withFileTypes: true })) {
        if (!queueEntry.isDirectory() || !QUEUE_ID_PATTERN.test(queueEntry.name)) {
          log.warn({ topic, name: queueEntry.name }, 'ignoring an entry that is not a queue id directory');
          continue;
        }
        const queue = this.getOrCreate(topic, Number(queueEntry.name));
        queue.load();
      }
    }
  }

  get(topic: string, queueId: number): ConsumeQueue | undefined {
    return this.queuesByTopic.get(topic)?.get(queueId);
  }

  /** The queue, created empty (no files until its first unit) when it does not exist. */
  getOrCreate(topic: string, queueId: number): ConsumeQueue {
    let queues = this.queuesByTopic.get(topic);
    let queue = queues?.get(queueId);
    if (queue !== undefined) return queue;
    invariant(
      topic.length > 0 && topic !== '.' && topic !== '..' && !/[/\\\0]/.test(topic),
      `topic ${JSON.stringify(topic)} cannot name a consume queue directory`,
    );
    invariant(Number.isInteger(queueId) && queueId >= 0 && queueId < 1e9, `bad queueId ${queueId}`);
    queue = new ConsumeQueue({
      dir: join(this.rootDir, topic, String(queueId)),
      topic,
      queueId,
      unitsPerFile: this.unitsPerFile,
    });
    if (queues === undefined) {
      queues = new Map();
      this.queuesByTopic.set(topic, queues);
    }
    queues.set(queueId, queue);
    return queue;
  }

  all(): ConsumeQueue[] {
    const queues: ConsumeQueue[] = [];
    for (const byId of this.queuesByTopic.values()) queues.push(...byId.values());
    return queues;
  }

  flushAll(): void {
    for (const queue of this.all()) queue.flush();
  }

  /**
   * flushAsync() of every queue, one after the other so that the thread pool keeps room for the
   * CommitLog's fdatasync. Stops early when `stopped()` turns true (the store halted). Every queue is
   * tried even when one fails; rejects with the first failure.
   */
  async flushAllAsync(stopped: () => boolean = () => false): Promise<void> {
    let failure: unknown;
    for (const queue of this.all()) {
      if (stopped()) break;
      try {
        await queue.flushAsync();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  }

  /**
   * Closes every queue and deletes all their files (a replica whose log restarts empty at another
   * offset: its queues then start over at the queue offsets of the records that arrive).
   */
  deleteAll(): void {
    this.closeAll();
    this.queuesByTopic.clear();
    rmSync(this.rootDir, { recursive: true, force: true });
    fsyncDirectory(dirname(this.rootDir));
  }

  /** Closes every queue, even when one fails; rethrows the first failure. */
  closeAll(): void {
    let failure: unknown;
    for (const queue of this.all()) {
      try {
        queue.close();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  }
}
