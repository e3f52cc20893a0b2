/**
 * One IndexFile (RocketMQ IndexFile.java, IndexHeader.java): a hash table from message keys to
 * CommitLog offsets in a fixed-size file. This module owns the file's bytes: appending entries,
 * walking slot chains, cutting a suffix of entries and repairing the slot table after a crash.
 * Choosing the file to write, naming files and queries across files are IndexService's.
 *
 * Layout, all integers big-endian:
 *
 *   header 40: beginTimestamp 8 | endTimestamp 8 | beginPhyOffset 8 | endPhyOffset 8
 *              | hashSlotCount 4 | indexCount 4
 *   slots:     slotsPerFile x int32, the index of the newest entry of the slot's chain (0 = empty)
 *   entries:   entriesPerFile x (keyHash 4 | phyOffset 8 | timeDiff 4 | prevIndex 4)
 *
 * keyHash is abs(Java hashCode of "topic#key") and selects slot keyHash % slotsPerFile; timeDiff is in
 * seconds since beginTimestamp; prevIndex links the chain backwards. Entry 0 is never used: indexCount
 * starts at 1 and is the index of the next entry. hashSlotCount counts puts, as RocketMQ's does.
 *
 * The active (newest) file keeps its slot table and its unwritten entries in memory, so a put costs
 * no syscall; flush() writes entries, then dirty slot chunks, then the header. A process crash can
 * stop that sequence anywhere; activate() repairs slots that point past the header's indexCount by
 * following their chains back to entries the header covers.
 *
 * flushAsync() is the periodic flush: it writes the slot chunks a few at a time, one slice per
 * event-loop turn, because with random keys nearly every chunk of a 20 MB table is dirty after a
 * second and one write of it stalls the loop for milliseconds. Each slice first writes the pending
 * entries, so a slot on disk never points at an entry that is not. The header written at the end
 * claims only the entries that existed when the flush began (slots pointing past it are what
 * activate() repairs), and is skipped when a synchronous flush wrote a newer one meanwhile. The
 * fdatasync runs on libuv's thread pool; the descriptor stays open until that completes, even if
 * the file is closed or deleted meanwhile.
 */
import { closeSync, fdatasyncSync, ftruncateSync, openSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { InvariantError, invariant } from '../common/assert.js';
import { ErrorCode, RbError } from '../common/errors.js';
import { javaStringHashCode } from '../common/java-hash.js';
import type { Logger } from '../common/logger.js';
import { nodeFileIo } from './file-io.js';

export const INDEX_HEADER_BYTES = 40;
export const INDEX_SLOT_BYTES = 4;
export const INDEX_ENTRY_BYTES = 20;

const Header = {
  BeginTimestamp: 0,
  EndTimestamp: 8,
  BeginPhyOffset: 16,
  EndPhyOffset: 24,
  HashSlotCount: 32,
  IndexCount: 36,
} as const;

const Entry = { KeyHash: 0, PhyOffset: 4, TimeDiff: 12, PrevIndex: 16 } as const;

/** Entries kept in memory before one positioned write; flush() writes the rest. */
const ENTRY_WRITE_BATCH = 4096;
/** The slot table is written back in chunks of this size; a put marks its chunk dirty. */
const SLOT_CHUNK_BYTES = 64 * 1024;
/** Slot bytes flushAsync() writes per event-loop turn (about a tenth of a millisecond of copying). */
const SLOT_BYTES_PER_TURN = 8 * SLOT_CHUNK_BYTES;
/** Entries read per positioned read when scanning backwards. */
const ENTRY_READ_CHUNK = 1024;
const INT32_MAX = 0x7fffffff;
const TWO_POW_32 = 4294967296;
/** timeDiff has a resolution of one second: an entry was stored within [time, time + 999 ms]. */
const TIME_RESOLUTION_MS = 1000;

export interface IndexGeometry {
  slotsPerFile: number;
  entriesPerFile: number;
}

export function indexFileBytes(geometry: IndexGeometry): number {
  return INDEX_HEADER_BYTES + geometry.slotsPerFile * INDEX_SLOT_BYTES + geometry.entriesPerFile * INDEX_ENTRY_BYTES;
}

/** IndexFile.indexKeyHashMethod: abs(hashCode), and 0 for Integer.MIN_VALUE whose abs stays negative. */
export function indexKeyHash(indexKey: string): number {
  const hash = javaStringHashCode(indexKey);
  return hash === -0x80000000 ? 0 : Math.abs(hash);
}

const HASH_SEPARATOR = '#'.charCodeAt(0);

/**
 * indexKeyHash of RocketMQ's index key `topic#key` (IndexService.buildKey), without building the
 * key: a concatenated string would be flattened before hashing, for every key of every message.
 */
export function indexKeyHashOf(topic: string, key: string): number {
  let hash = javaStringHashCode(topic);
  hash = (Math.imul(31, hash) + HASH_SEPARATOR) | 0;
  for (let i = 0; i < key.length; i++) hash = (Math.imul(31, hash) + key.charCodeAt(i)) | 0;
  return hash === -0x80000000 ? 0 : Math.abs(hash);
}

function readInt64(buf: Buffer, at: number): number {
  return buf.readInt32BE(at) * TWO_POW_32 + buf.readUInt32BE(at + 4);
}

function writeInt64(buf: Buffer, at: number, value: number): void {
  buf.writeInt32BE(Math.floor(value / TWO_POW_32), at);
  buf.writeUInt32BE(value >>> 0, at + 4);
}

function writeFully(fd: number, buf: Buffer, offset: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = writeSync(fd, buf, offset + done, length - done, position + done);
    invariant(n > 0, 'writeSync wrote nothing');
    done += n;
  }
}

function readFully(fd: number, buf: Buffer, offset: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, offset + done, length - done, position + done);
    if (n === 0) {
      buf.fill(0, offset + done, offset + length);
      return;
    }
    done += n;
  }
}

function ioFailed(path: string, what: string, err: unknown): RbError {
  const reason = err instanceof Error ? err.message : String(err);
  return new RbError(ErrorCode.StoreWriteFailed, `index file ${path}: ${what} failed: ${reason}`, { cause: err });
}

/** The value a new file copies from its predecessor (IndexService.getAndCreateLastIndexFile). */
export interface IndexFileStart {
  endPhyOffset: number;
  endTimestampMs: number;
}

/** One index file; see the module comment for its layout and crash behaviour. */
export class IndexFile {
  readonly path: string;
  readonly name: string;
  private readonly slotsPerFile: number;
  private readonly entriesPerFile: number;
  private readonly entriesStartByte: number;
  private fd: number | undefined;

  beginTimestampMs = 0;
  endTimestampMs = 0;
  beginPhyOffset = 0;
  endPhyOffset = 0;
  private hashSlotCount = 0;
  /** Index of the next entry; entries [1, indexCount) exist. */
  private indexCount = 1;

  /** The slot table while this file is the active one. */
  private slots: Buffer | undefined;
  private dirtySlotChunks: Uint8Array | undefined;
  private dirtySlotChunkCount = 0;
  /** Entries [writtenIndexCount, indexCount) live only in `pendingEntries`. */
  private writtenIndexCount = 1;
  private pendingEntries: Buffer | undefined;
  private headerDirty = false;
  /** indexCount in the header last written (a slower flushAsync must not write an older one). */
  private headerIndexCount = 0;
  private unsynced = false;
  /** fdatasyncs running on the thread pool; close() and destroy() leave the descriptor to the last. */
  private syncsInFlight = 0;
  private fdToClose: number | undefined;
  private readonly scratch = Buffer.alloc(ENTRY_READ_CHUNK * INDEX_ENTRY_BYTES);

  private constructor(path: string, geometry: IndexGeometry, fd: number) {
    this.path = path;
    this.name = basename(path);
    this.slotsPerFile = geometry.slotsPerFile;
    this.entriesPerFile = geometry.entriesPerFile;
    this.entriesStartByte = INDEX_HEADER_BYTES + geometry.slotsPerFile * INDEX_SLOT_BYTES;
    this.fd = fd;
  }

  /** Creates an empty file at full size (sparse), active, carrying its predecessor's end values. */
  static create(path: string, geometry: IndexGeometry, start: IndexFileStart | undefined): IndexFile {
    let fd: number;
    try {
      fd = openSync(path, 'w+');
      ftruncateSync(fd, indexFileBytes(geometry));
    } catch (err) {
      throw ioFailed(path, 'create', err);
    }
    const file = new IndexFile(path, geometry, fd);
    if (start !== undefined) {
      file.beginPhyOffset = start.endPhyOffset;
      file.endPhyOffset = start.endPhyOffset;
      file.beginTimestampMs = start.endTimestampMs;
      file.endTimestampMs = start.endTimestampMs;
    }
    file.headerDirty = true;
    file.slots = Buffer.alloc(geometry.slotsPerFile * INDEX_SLOT_BYTES);
    file.dirtySlotChunks = new Uint8Array(Math.ceil(file.slots.length / SLOT_CHUNK_BYTES));
    return file;
  }

  /**
   * Opens an existing file and reads its header. Returns undefined, after logging why, when the file
   * does not fit the geometry or its header is not an index header.
   */
  static open(path: string, geometry: IndexGeometry, log: Logger): IndexFile | undefined {
    const expectedBytes = indexFileBytes(geometry);
    const sizeBytes = statSync(path).size;
    if (sizeBytes !== expectedBytes) {
      log.warn(
        { path, sizeBytes, expectedBytes },
        'ignoring an index file whose size does not fit indexSlotsPerFile/indexEntriesPerFile',
      );
      return undefined;
    }
    const fd = openSync(path, 'r+');
    const file = new IndexFile(path, geometry, fd);
    const header = Buffer.alloc(INDEX_HEADER_BYTES);
    readFully(fd, header, 0, INDEX_HEADER_BYTES, 0);
    file.beginTimestampMs = readInt64(header, Header.BeginTimestamp);
    file.endTimestampMs = readInt64(header, Header.EndTimestamp);
    file.beginPhyOffset = readInt64(header, Header.BeginPhyOffset);
    file.endPhyOffset = readInt64(header, Header.EndPhyOffset);
    file.hashSlotCount = header.readInt32BE(Header.HashSlotCount);
    // IndexHeader.load: a count of 0 or less is an empty file.
    file.indexCount = Math.max(1, header.readInt32BE(Header.IndexCount));
    file.writtenIndexCount = file.indexCount;
    file.headerIndexCount = file.indexCount;
    const problem = file.headerProblem();
    if (problem !== undefined) {
      closeSync(fd);
      log.warn({ path, problem }, 'ignoring an index file with a malformed header');
      return undefined;
    }
    return file;
  }

  private headerProblem(): string | undefined {
    if (this.indexCount > this.entriesPerFile) {
      return `indexCount ${this.indexCount} exceeds ${this.entriesPerFile} entries`;
    }
    if (this.beginPhyOffset < 0 || this.endPhyOffset < this.beginPhyOffset) {
      return `phy offsets [${this.beginPhyOffset}, ${this.endPhyOffset}] are not a range`;
    }
    if (this.beginTimestampMs < 0 || this.endTimestampMs < 0) {
      return `timestamps [${this.beginTimestampMs}, ${this.endTimestampMs}] are negative`;
    }
    return undefined;
  }

  /** Number of entries in the file. */
  entryCount(): number {
    return this.indexCount - 1;
  }

  isFull(): boolean {
    return this.indexCount >= this.entriesPerFile;
  }

  isActive(): boolean {
    return this.slots !== undefined;
  }

  /** IndexFile.isTimeMatched: the file's time range meets [beginMs, endMs]. */
  isTimeMatched(beginMs: number, endMs: number): boolean {
    return beginMs <= this.endTimestampMs && endMs >= this.beginTimestampMs;
  }

  /**
   * Loads the slot table into memory for appending, and repairs slots that a crash left pointing at
   * entries the header does not cover: those chains are followed back to a covered entry.
   */
  activate(log: Logger): void {
    if (this.slots !== undefined) return;
    const slots = Buffer.alloc(this.slotsPerFile * INDEX_SLOT_BYTES);
    readFully(this.fdOrThrow(), slots, 0, slots.length, INDEX_HEADER_BYTES);
    this.slots = slots;
    this.dirtySlotChunks = new Uint8Array(Math.ceil(slots.length / SLOT_CHUNK_BYTES));
    this.dirtySlotChunkCount = 0;
    let repaired = 0;
    for (let slot = 0; slot < this.slotsPerFile; slot++) {
      const value = slots.readInt32BE(slot * INDEX_SLOT_BYTES);
      if (value >= 0 && value < this.indexCount) continue;
      this.setSlot(slot, this.coveredChainHead(value));
      repaired++;
    }
    if (repaired > 0) {
      log.warn({ path: this.path, repairedSlots: repaired }, 'repaired index slots left past the header by a crash');
      this.flush();
    }
  }

  /**
   * Writes everything and drops the in-memory slot table. The fdatasync is left to the next flush
   * (needsSync() tells), so that sealing a full file does not block the caller.
   */
  deactivate(): void {
    this.writeBuffered();
    this.slots = undefined;
    this.dirtySlotChunks = undefined;
    this.dirtySlotChunkCount = 0;
    this.pendingEntries = undefined;
  }

  /**
   * Follows a chain from an entry past indexCount (written to disk before the crash, its slot too,
   * but not the header) down to the first entry the header covers; 0 when there is none.
   */
  private coveredChainHead(value: number): number {
    let index = value;
    for (let steps = 0; index >= this.indexCount && steps < this.entriesPerFile; steps++) {
      if (index >= this.entriesPerFile) return 0;
      const entry = this.readEntries(index, 1);
      const prev = entry.readInt32BE(Entry.PrevIndex);
      if (prev < 0 || prev >= index) return 0;
      index = prev;
    }
    return index >= this.indexCount ? 0 : index;
  }

  /** IndexFile.putKey. False when the file is full. */
  put(keyHash: number, phyOffset: number, storeTimestampMs: number): boolean {
    const slots = this.slots;
    if (slots === undefined) throw new InvariantError(`index file ${this.path} is not active`);
    if (this.isFull()) return false;
    const slot = keyHash % this.slotsPerFile;
    let slotValue = slots.readInt32BE(slot * INDEX_SLOT_BYTES);
    if (slotValue <= 0 || slotValue >= this.indexCount) slotValue = 0;

    if (this.indexCount <= 1) {
      this.beginPhyOffset = phyOffset;
      this.beginTimestampMs = storeTimestampMs;
    }
    const timeDiffSeconds = Math.min(
      INT32_MAX,
      Math.max(0, Math.floor((storeTimestampMs - this.beginTimestampMs) / TIME_RESOLUTION_MS)),
    );

    const pending = (this.pendingEntries ??= Buffer.alloc(ENTRY_WRITE_BATCH * INDEX_ENTRY_BYTES));
    const at = (this.indexCount - this.writtenIndexCount) * INDEX_ENTRY_BYTES;
    pending.writeInt32BE(keyHash, at + Entry.KeyHash);
    writeInt64(pending, at + Entry.PhyOffset, phyOffset);
    pending.writeInt32BE(timeDiffSeconds, at + Entry.TimeDiff);
    pending.writeInt32BE(slotValue, at + Entry.PrevIndex);
    this.setSlot(slot, this.indexCount);

    this.hashSlotCount++;
    this.indexCount++;
    this.endPhyOffset = phyOffset;
    this.endTimestampMs = Math.max(this.endTimestampMs, storeTimestampMs);
    this.headerDirty = true;
    if (at + INDEX_ENTRY_BYTES === pending.length) this.writePendingEntries();
    return true;
  }

  /**
   * IndexFile.selectPhyOffset: walks the key's slot chain, newest first, adding the phy offsets of
   * entries with the same hash stored within [beginMs, endMs] until `out` holds `maxCount`.
   */
  select(keyHash: number, maxCount: number, beginMs: number, endMs: number, out: number[], seen: Set<number>): void {
    if (this.indexCount <= 1) return;
    const slot = keyHash % this.slotsPerFile;
    let index = this.readSlot(slot);
    if (index <= 0 || index >= this.indexCount) return;
    for (let steps = 0; steps < this.indexCount && out.length < maxCount; steps++) {
      const entry = this.readEntries(index, 1);
      const timeDiffSeconds = entry.readInt32BE(Entry.TimeDiff);
      if (timeDiffSeconds < 0) break;
      const storedFromMs = this.beginTimestampMs + timeDiffSeconds * TIME_RESOLUTION_MS;
      const storedToMs = storedFromMs + TIME_RESOLUTION_MS - 1;
      if (entry.readInt32BE(Entry.KeyHash) === keyHash && storedFromMs <= endMs && storedToMs >= beginMs) {
        const phyOffset = readInt64(entry, Entry.PhyOffset);
        if (!seen.has(phyOffset)) {
          seen.add(phyOffset);
          out.push(phyOffset);
        }
      }
      const prev = entry.readInt32BE(Entry.PrevIndex);
      // The chain runs back in time: once older than beginMs, nothing further matches.
      if (prev <= 0 || prev >= index || storedToMs < beginMs) break;
      index = prev;
    }
  }

  /**
   * Removes the entries at phy offsets >= commitLogEndOffset (a suffix: entries are appended in
   * CommitLog order), unlinking each from its slot, newest first, so the slot falls back to the
   * entry before it. Must be active. Returns the number of entries removed.
   */
  truncateFrom(commitLogEndOffset: number, log: Logger): number {
    const slots = this.slots;
    invariant(slots !== undefined, `index file ${this.path} is not active`);
    if (this.indexCount <= 1 || this.endPhyOffset < commitLogEndOffset) return 0;
    this.writePendingEntries();
    // First entry at or past the cut (binary search over [1, indexCount)).
    let low = 1;
    let high = this.indexCount;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      if (readInt64(this.readEntries(middle, 1), Entry.PhyOffset) >= commitLogEndOffset) high = middle;
      else low = middle + 1;
    }
    const cutIndex = low;
    let inconsistent = 0;
    for (let to = this.indexCount; to > cutIndex;) {
      const from = Math.max(cutIndex, to - ENTRY_READ_CHUNK);
      const chunk = this.readEntries(from, to - from);
      for (let index = to - 1; index >= from; index--) {
        const at = (index - from) * INDEX_ENTRY_BYTES;
        const slot = chunk.readInt32BE(at + Entry.KeyHash) % this.slotsPerFile;
        if (slot >= 0 && slots.readInt32BE(slot * INDEX_SLOT_BYTES) === index) {
          this.setSlot(slot, chunk.readInt32BE(at + Entry.PrevIndex));
        } else {
          inconsistent++;
        }
      }
      to = from;
    }
    if (inconsistent > 0) {
      log.warn({ path: this.path, entries: inconsistent }, 'truncated index entries that were not their slot head');
    }
    const removed = this.indexCount - cutIndex;
    this.indexCount = cutIndex;
    this.writtenIndexCount = cutIndex;
    this.hashSlotCount = Math.max(0, this.hashSlotCount - removed);
    if (cutIndex > 1) {
      const lastEntry = this.readEntries(cutIndex - 1, 1);
      this.endPhyOffset = readInt64(lastEntry, Entry.PhyOffset);
      // The exact time is gone; the entry's time window's end is an upper bound for queries.
      const lastTimeMs =
        this.beginTimestampMs + lastEntry.readInt32BE(Entry.TimeDiff) * TIME_RESOLUTION_MS + TIME_RESOLUTION_MS - 1;
      this.endTimestampMs = Math.min(this.endTimestampMs, lastTimeMs);
    } else {
      this.endPhyOffset = this.beginPhyOffset;
      this.endTimestampMs = this.beginTimestampMs;
    }
    this.headerDirty = true;
    return removed;
  }

  /** True when written bytes await an fdatasync. */
  needsSync(): boolean {
    return this.unsynced;
  }

  /** Writes unwritten entries, dirty slot chunks and the header, in that order, then fdatasync. */
  flush(): void {
    const fd = this.fdOrThrow();
    this.writeBuffered();
    if (!this.unsynced) return;
    try {
      fdatasyncSync(fd);
    } catch (err) {
      throw ioFailed(this.path, 'flush', err);
    }
    this.unsynced = false;
  }

  /**
   * flush() with the fdatasync on the thread pool. Everything put before the call is on disk when the
   * promise resolves; on a failure the file stays unsynced and the promise rejects with RbError.
   */
  async flushAsync(): Promise<void> {
    let fd = this.fdOrThrow();
    if (this.slots === undefined) {
      this.writeBuffered();
    } else {
      const header = this.encodeHeader();
      const headerIndexCount = this.indexCount;
      try {
        this.writePendingEntries();
        let chunk = this.writeDirtySlotsFrom(fd, 0, SLOT_BYTES_PER_TURN);
        while (chunk >= 0) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          // Closed or sealed meanwhile: that synchronous flush wrote every slot and the header.
          if (this.fd === undefined) return;
          fd = this.fd;
          if (this.slots === undefined) break;
          this.writePendingEntries();
          chunk = this.writeDirtySlotsFrom(fd, chunk, SLOT_BYTES_PER_TURN);
        }
        if (headerIndexCount > this.headerIndexCount) {
          writeFully(fd, header, 0, INDEX_HEADER_BYTES, 0);
          this.headerIndexCount = headerIndexCount;
          this.unsynced = true;
        }
      } catch (err) {
        if (err instanceof RbError) throw err;
        throw ioFailed(this.path, 'write', err);
      }
    }
    if (!this.unsynced) return;
    // Cleared before the sync: a write meanwhile sets it again for the next flush.
    this.unsynced = false;
    this.syncsInFlight++;
    try {
      await nodeFileIo.fdatasync(fd);
    } catch (err) {
      this.unsynced = true;
      throw ioFailed(this.path, 'flush', err);
    } finally {
      this.syncsInFlight--;
      if (this.syncsInFlight === 0 && this.fdToClose !== undefined) {
        closeSync(this.fdToClose);
        this.fdToClose = undefined;
      }
    }
  }

  /** Flushes and closes the file descriptor. */
  close(): void {
    if (this.fd === undefined) return;
    try {
      if (this.slots !== undefined || this.unsynced) this.flush();
    } finally {
      this.releaseFd();
      this.slots = undefined;
    }
  }

  /** Closes without flushing and deletes the file. */
  destroy(): void {
    this.releaseFd();
    this.slots = undefined;
    this.unsynced = false;
    unlinkSync(this.path);
  }

  /** Writes unwritten entries, dirty slot chunks and the header, in that order. */
  private writeBuffered(): void {
    const fd = this.fdOrThrow();
    try {
      this.writePendingEntries();
      if (this.dirtySlotChunkCount > 0) this.writeDirtySlots(fd);
      if (this.headerDirty) {
        writeFully(fd, this.encodeHeader(), 0, INDEX_HEADER_BYTES, 0);
        this.headerDirty = false;
        this.headerIndexCount = this.indexCount;
        this.unsynced = true;
      }
    } catch (err) {
      if (err instanceof RbError) throw err;
      throw ioFailed(this.path, 'write', err);
    }
  }

  /** Closes the descriptor now, or when the fdatasync in flight completes. */
  private releaseFd(): void {
    if (this.fd === undefined) return;
    if (this.syncsInFlight > 0) {
      if (this.fdToClose !== undefined) closeSync(this.fdToClose);
      this.fdToClose = this.fd;
    } else {
      closeSync(this.fd);
    }
    this.fd = undefined;
  }

  private fdOrThrow(): number {
    if (this.fd === undefined) throw new RbError(ErrorCode.StoreClosed, `index file ${this.path} is closed`);
    return this.fd;
  }

  private setSlot(slot: number, value: number): void {
    const slots = this.slots!;
    slots.writeInt32BE(value, slot * INDEX_SLOT_BYTES);
    const chunk = Math.floor((slot * INDEX_SLOT_BYTES) / SLOT_CHUNK_BYTES);
    const dirty = this.dirtySlotChunks!;
    if (dirty[chunk] === 0) {
      dirty[chunk] = 1;
      this.dirtySlotChunkCount++;
    }
  }

  private readSlot(slot: number): number {
    if (this.slots !== undefined) return this.slots.readInt32BE(slot * INDEX_SLOT_BYTES);
    readFully(this.fdOrThrow(), this.scratch, 0, INDEX_SLOT_BYTES, INDEX_HEADER_BYTES + slot * INDEX_SLOT_BYTES);
    return this.scratch.readInt32BE(0);
  }

  /**
   * `count` entries from `index`, all either in memory or on disk; the returned view is valid until
   * the next read.
   */
  private readEntries(index: number, count: number): Buffer {
    invariant(count > 0 && count <= ENTRY_READ_CHUNK && index + count <= this.entriesPerFile, 'bad entry read');
    if (index >= this.writtenIndexCount && this.pendingEntries !== undefined) {
      const at = (index - this.writtenIndexCount) * INDEX_ENTRY_BYTES;
      return this.pendingEntries.subarray(at, at + count * INDEX_ENTRY_BYTES);
    }
    invariant(index + count <= this.writtenIndexCount || index >= this.indexCount, 'entry read spans memory and disk');
    const length = count * INDEX_ENTRY_BYTES;
    readFully(this.fdOrThrow(), this.scratch, 0, length, this.entriesStartByte + index * INDEX_ENTRY_BYTES);
    return this.scratch.subarray(0, length);
  }

  private writePendingEntries(): void {
    const count = this.indexCount - this.writtenIndexCount;
    if (count === 0 || this.pendingEntries === undefined) return;
    try {
      writeFully(
        this.fdOrThrow(),
        this.pendingEntries,
        0,
        count * INDEX_ENTRY_BYTES,
        this.entriesStartByte + this.writtenIndexCount * INDEX_ENTRY_BYTES,
      );
    } catch (err) {
      if (err instanceof RbError) throw err;
      throw ioFailed(this.path, 'entry write', err);
    }
    this.writtenIndexCount = this.indexCount;
    this.unsynced = true;
  }

  /** Every dirty chunk, one write per run of adjacent ones. */
  private writeDirtySlots(fd: number): void {
    this.writeDirtySlotsFrom(fd, 0, Infinity);
  }

  /**
   * Writes the dirty chunks from `firstChunk` on, one write per run of adjacent ones, until about
   * `maxBytes` are written; returns the chunk to go on from, or -1 after the last one.
   */
  private writeDirtySlotsFrom(fd: number, firstChunk: number, maxBytes: number): number {
    const slots = this.slots!;
    const dirty = this.dirtySlotChunks!;
    let written = 0;
    let chunk = firstChunk;
    while (chunk < dirty.length) {
      if (written >= maxBytes) return chunk;
      if (dirty[chunk] === 0) {
        chunk++;
        continue;
      }
      let end = chunk;
      while (end < dirty.length && dirty[end] === 1 && (end - chunk) * SLOT_CHUNK_BYTES < maxBytes) {
        dirty[end++] = 0;
        this.dirtySlotChunkCount--;
      }
      const from = chunk * SLOT_CHUNK_BYTES;
      const to = Math.min(slots.length, end * SLOT_CHUNK_BYTES);
      writeFully(fd, slots, from, to - from, INDEX_HEADER_BYTES + from);
      written += to - from;
      this.unsynced = true;
      chunk = end;
    }
    return -1;
  }

  private encodeHeader(): Buffer {
    const header = Buffer.alloc(INDEX_HEADER_BYTES);
    writeInt64(header, Header.BeginTimestamp, this.beginTimestampMs);
    writeInt64(header, Header.EndTimestamp, this.endTimestampMs);
    writeInt64(header, Header.BeginPhyOffset, this.beginPhyOffset);
    writeInt64(header, Header.EndPhyOffset, this.endPhyOffset);
    header.writeInt32BE(this.hashSlotCount | 0, Header.HashSlotCount);
    header.writeInt32BE(this.indexCount, Header.IndexCount);
    return header;
  }
}
