/**
 * IndexService: the store's key index across IndexFiles under `<storePath>/index` (RocketMQ
 * IndexService.java). It owns the list of files: which one takes the next key, naming and rotating
 * them, queries across them newest first, cutting entries after a CommitLog truncation and deleting
 * expired files. The byte layout of a file is index-file.ts's. Which keys a message has (UNIQ_KEY and
 * KEYS) is the dispatcher's choice; whatever a crash loses here it re-dispatches from the CommitLog.
 *
 * flush() blocks on its fdatasyncs (shutdown, recovery); flushAsync() runs them on libuv's thread pool
 * for the store's periodic flush, so that puts and pulls go on meanwhile.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { InvariantError, invariant } from '../common/assert.js';
import { ErrorCode, RbError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { fsyncDirectory } from '../common/atomic-file.js';
import { IndexFile, indexKeyHashOf, type IndexGeometry } from './index-file.js';

const log = createLogger('index-service');

/** RocketMQ names index files by creation time, yyyyMMddHHmmssSSS (UtilAll.timeMillisToHumanString). */
const FILE_NAME_DIGITS = 17;
const FILE_NAME_PATTERN = /^\d{1,20}$/;

export interface IndexServiceOptions {
  /** `<storePath>/index`. */
  dir: string;
  slotsPerFile: number;
  entriesPerFile: number;
}

function timeName(timeMs: number): string {
  const date = new Date(timeMs);
  const two = (n: number): string => String(n).padStart(2, '0');
  return (
    String(date.getFullYear()).padStart(4, '0') +
    two(date.getMonth() + 1) +
    two(date.getDate()) +
    two(date.getHours()) +
    two(date.getMinutes()) +
    two(date.getSeconds()) +
    String(date.getMilliseconds()).padStart(3, '0')
  );
}

function compareNames(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Maps `topic#key` to CommitLog offsets. put() appends in memory (no syscall); flush() writes the
 * active file. Only the newest file is active: its slot table (slotsPerFile x 4 bytes) and up to a
 * batch of entries stay in memory; older files are read with positioned reads.
 */
export class IndexService {
  private readonly dir: string;
  private readonly geometry: IndexGeometry;
  /** Oldest first; the last one is active. */
  private files: IndexFile[] = [];
  /** The greatest file name in the directory, ignored files included: new names sort after it. */
  private greatestName = '0';
  private maxIndexedOffset = -1;
  private directoryDirty = false;
  private closed = false;
  /** The flushAsync() in progress, if any; the next one runs after it. */
  private asyncFlush: Promise<void> | undefined;

  constructor(options: IndexServiceOptions) {
    invariant(
      Number.isInteger(options.slotsPerFile) && options.slotsPerFile > 0 && options.slotsPerFile <= 0x1fffffff,
      `slotsPerFile must be a positive integer, got ${options.slotsPerFile}`,
    );
    // Entry 0 is unused, and indexes are int32.
    invariant(
      Number.isInteger(options.entriesPerFile) && options.entriesPerFile > 1 && options.entriesPerFile <= 0x7fffffff,
      `entriesPerFile must be an integer above 1, got ${options.entriesPerFile}`,
    );
    this.dir = options.dir;
    this.geometry = { slotsPerFile: options.slotsPerFile, entriesPerFile: options.entriesPerFile };
  }

  /**
   * Opens the index files, oldest first. Files that do not fit the geometry or have a malformed header
   * are logged and left alone; the newest good file becomes active (its slots are repaired if a crash
   * interrupted a flush). Entries that never reached the file are simply absent.
   */
  load(): void {
    this.closeFiles();
    this.files = [];
    this.maxIndexedOffset = -1;
    if (!existsSync(this.dir)) return;
    const names = readdirSync(this.dir).filter((name) => {
      if (FILE_NAME_PATTERN.test(name)) return true;
      log.warn({ dir: this.dir, name }, 'ignoring a file that is not an index file');
      return false;
    });
    names.sort(compareNames);
    for (const name of names) {
      if (compareNames(name, this.greatestName) > 0) this.greatestName = name;
      const file = IndexFile.open(join(this.dir, name), this.geometry, log);
      if (file !== undefined) this.files.push(file);
    }
    this.files.at(-1)?.activate(log);
    this.maxIndexedOffset = this.computeMaxIndexedOffset();
  }

  /**
   * Indexes `topic#key` at a CommitLog offset. Keys arrive in CommitLog order; a key below the newest
   * indexed offset is a replay and is skipped (IndexService.buildIndex). Several keys of one message
   * share its offset.
   */
  put(topic: string, key: string, commitLogOffset: number, storeTimestampMs: number): void {
    if (this.closed) throw new RbError(ErrorCode.StoreClosed, `index ${this.dir} is closed`);
    // Runs per key of every stored message: the messages are formatted only when a check fails.
    if (!(Number.isSafeInteger(commitLogOffset) && commitLogOffset >= 0)) {
      throw new InvariantError(`bad commitLogOffset ${commitLogOffset}`);
    }
    if (!(Number.isSafeInteger(storeTimestampMs) && storeTimestampMs >= 0)) {
      throw new InvariantError(`bad timestamp ${storeTimestampMs}`);
    }
    if (commitLogOffset < this.maxIndexedOffset) return;
    let file = this.files.at(-1);
    if (file === undefined || file.isFull()) file = this.rotate();
    const added = file.put(indexKeyHashOf(topic, key), commitLogOffset, storeTimestampMs);
    if (!added) throw new InvariantError(`index file ${file.path} refused a key though not full`);
    this.maxIndexedOffset = commitLogOffset;
  }

  /**
   * Candidate CommitLog offsets of messages with `key` in `topic` stored within [beginMs, endMs],
   * newest first, at most `maxCount`, without duplicates. Candidates include hash collisions and
   * entries up to a second outside the range (timeDiff has second resolution): the caller verifies.
   */
  query(topic: string, key: string, maxCount: number, beginMs: number, endMs: number): number[] {
    const found: number[] = [];
    if (!(maxCount > 0) || endMs < beginMs) return found;
    const keyHash = indexKeyHashOf(topic, key);
    const seen = new Set<number>();
    for (let i = this.files.length - 1; i >= 0 && found.length < maxCount; i--) {
      const file = this.files[i]!;
      if (file.entryCount() === 0) continue;
      if (file.isTimeMatched(beginMs, endMs)) file.select(keyHash, maxCount, beginMs, endMs, found, seen);
      // Older files hold older entries only.
      if (file.beginTimestampMs < beginMs) break;
    }
    return found;
  }

  /** The CommitLog offset of the newest entry; -1 when the index is empty. */
  maxIndexedCommitLogOffset(): number {
    return this.maxIndexedOffset;
  }

  /**
   * Removes every entry at a CommitLog offset >= `commitLogEndOffset`: whole files whose first entry
   * is past it are deleted, and the file holding the cut has its tail unlinked from the slot chains,
   * so that puts at those offsets work again. Written and synced at once.
   */
  truncateByCommitLogOffset(commitLogEndOffset: number): void {
    if (this.closed) throw new RbError(ErrorCode.StoreClosed, `index ${this.dir} is closed`);
    if (this.maxIndexedOffset < commitLogEndOffset) return;
    while (this.files.length > 0) {
      const newest = this.files.at(-1)!;
      if (newest.entryCount() > 0 && newest.beginPhyOffset < commitLogEndOffset) {
        newest.activate(log);
        const removed = newest.truncateFrom(commitLogEndOffset, log);
        newest.flush();
        log.info({ path: newest.path, removed, commitLogEndOffset }, 'truncated index entries');
        break;
      }
      this.files.pop();
      newest.destroy();
      this.directoryDirty = true;
      log.info({ path: newest.path, commitLogEndOffset }, 'deleted an index file past the truncated CommitLog');
    }
    this.files.at(-1)?.activate(log);
    this.syncDirectory();
    this.maxIndexedOffset = this.computeMaxIndexedOffset();
  }

  /**
   * Deletes, oldest first, whole files whose entries all point below `commitLogMinOffset`; never the
   * newest file (IndexService.deleteExpiredFile).
   */
  deleteExpired(commitLogMinOffset: number): void {
    while (this.files.length > 1) {
      const oldest = this.files[0]!;
      if (oldest.entryCount() > 0 && oldest.endPhyOffset >= commitLogMinOffset) break;
      this.files.shift();
      oldest.destroy();
      this.directoryDirty = true;
      log.info({ path: oldest.path, commitLogMinOffset }, 'deleted an expired index file');
    }
    this.syncDirectory();
  }

  /** Writes the active file's entries, slots and header, and fdatasyncs it and any file sealed since. */
  flush(): void {
    if (this.closed) return;
    for (const file of this.files) {
      if (file.isActive() || file.needsSync()) file.flush();
    }
    this.syncDirectory();
  }

  /**
   * flush() with the fdatasyncs on the thread pool, one file at a time. Calls are chained, so that
   * two never flush the same file at once. When the promise resolves, every key put before the call is
   * on disk; a failure rejects with RbError StoreWriteFailed and leaves the files marked unsynced.
   * Stops before the next file once `stopped()` turns true (the store halted).
   */
  flushAsync(stopped: () => boolean = () => false): Promise<void> {
    const previous = this.asyncFlush;
    const run = (): Promise<void> => this.syncUnsynced(stopped);
    const flushed = (previous === undefined ? run() : previous.then(run)).finally(() => {
      if (this.asyncFlush === flushed) this.asyncFlush = undefined;
    });
    this.asyncFlush = flushed;
    return flushed;
  }

  private async syncUnsynced(stopped: () => boolean): Promise<void> {
    // Oldest first: files sealed by rotation, then the active one. A file deleted meanwhile is skipped.
    for (const file of [...this.files]) {
      if (this.closed || stopped()) return;
      if (!this.files.includes(file) || !(file.isActive() || file.needsSync())) continue;
      await file.flushAsync();
    }
    if (this.directoryDirty) {
      this.directoryDirty = false;
      try {
        const handle = await open(this.dir, 'r');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      } catch (err) {
        this.directoryDirty = true;
        throw new RbError(ErrorCode.StoreWriteFailed, `index ${this.dir}: directory fsync failed`, { cause: err });
      }
    }
  }

  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closeFiles();
      this.closed = true;
    }
  }

  /** Seals the active file (written; the next flush syncs it) and starts a new one. */
  private rotate(): IndexFile {
    const previous = this.files.at(-1);
    if (previous !== undefined) previous.deactivate();
    if (this.files.length === 0) mkdirSync(this.dir, { recursive: true });
    const name = this.nextName();
    const start =
      previous === undefined
        ? undefined
        : { endPhyOffset: previous.endPhyOffset, endTimestampMs: previous.endTimestampMs };
    const file = IndexFile.create(join(this.dir, name), this.geometry, start);
    this.files.push(file);
    this.greatestName = name;
    this.directoryDirty = true;
    log.info({ path: file.path }, 'created an index file');
    return file;
  }

  /** The creation time as RocketMQ names it, bumped past the greatest existing name. */
  private nextName(): string {
    const name = timeName(Date.now());
    if (compareNames(name, this.greatestName) > 0) return name;
    return (BigInt(this.greatestName) + 1n).toString().padStart(FILE_NAME_DIGITS, '0');
  }

  private computeMaxIndexedOffset(): number {
    for (let i = this.files.length - 1; i >= 0; i--) {
      const file = this.files[i]!;
      if (file.entryCount() > 0) return file.endPhyOffset;
    }
    return -1;
  }

  private syncDirectory(): void {
    if (!this.directoryDirty) return;
    try {
      fsyncDirectory(this.dir);
    } catch (err) {
      throw new RbError(ErrorCode.StoreWriteFailed, `index ${this.dir}: directory fsync failed`, { cause: err });
    }
    this.directoryDirty = false;
  }

  private closeFiles(): void {
    let failure: unknown;
    for (const file of this.files) {
      try {
        file.close();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  }
}
