/**
 * The store checkpoint: `<storePath>/checkpoint`, one 4 KiB file rewritten in place and fsynced
 * (RocketMQ StoreCheckpoint). Recovery trusts the CommitLog up to `commitLogFlushedOffset` and
 * rebuilds ConsumeQueues and the index from the offsets they were flushed at. A checkpoint that fails
 * its CRC is ignored: recovery then starts from the oldest segment.
 *
 * Layout (big-endian), RocketMQ's three timestamps first at their usual positions:
 *
 *   0  physicMsgTimestamp 8 | 8 logicsMsgTimestamp 8 | 16 indexMsgTimestamp 8
 *   24 magic 4 ("RBCP") | 28 version 4
 *   32 commitLogFlushedOffset 8 | 40 consumeQueueFlushedOffset 8 | 48 indexFlushedOffset 8
 *   56 CRC-32 of bytes [0, 56) 4 | zeros to 4096
 */
import { crc32 } from 'node:zlib';
import type { FileIo } from './file-io.js';

export interface CheckpointState {
  /** Store timestamp of the newest flushed CommitLog record. */
  physicMsgTimestamp: number;
  /** Store timestamp of the newest record whose ConsumeQueue unit is flushed. */
  logicsMsgTimestamp: number;
  /** Store timestamp of the newest record whose index entries are flushed. */
  indexMsgTimestamp: number;
  /** Every CommitLog byte below this is on disk. */
  commitLogFlushedOffset: number;
  /** ConsumeQueue units of every record below this CommitLog offset are on disk. */
  consumeQueueFlushedOffset: number;
  /** Index entries of every record below this CommitLog offset are on disk. */
  indexFlushedOffset: number;
}

export const CHECKPOINT_FILE_BYTES = 4096;
const MAGIC = 0x52424350; // "RBCP"
const VERSION = 1;
const CRC_AT = 56;
const USED_BYTES = 60;

export function encodeCheckpoint(state: CheckpointState): Buffer {
  const bytes = Buffer.alloc(USED_BYTES);
  bytes.writeBigInt64BE(BigInt(state.physicMsgTimestamp), 0);
  bytes.writeBigInt64BE(BigInt(state.logicsMsgTimestamp), 8);
  bytes.writeBigInt64BE(BigInt(state.indexMsgTimestamp), 16);
  bytes.writeInt32BE(MAGIC, 24);
  bytes.writeInt32BE(VERSION, 28);
  bytes.writeBigInt64BE(BigInt(state.commitLogFlushedOffset), 32);
  bytes.writeBigInt64BE(BigInt(state.consumeQueueFlushedOffset), 40);
  bytes.writeBigInt64BE(BigInt(state.indexFlushedOffset), 48);
  bytes.writeUInt32BE(crc32(bytes.subarray(0, CRC_AT)), CRC_AT);
  return bytes;
}

/** The state in `bytes`, or a reason it cannot be trusted. */
export function decodeCheckpoint(bytes: Buffer): CheckpointState | string {
  if (bytes.length < USED_BYTES) return `checkpoint has ${bytes.length} bytes`;
  if (bytes.readInt32BE(24) !== MAGIC) return 'checkpoint magic mismatch';
  if (bytes.readInt32BE(28) !== VERSION) return `checkpoint version ${bytes.readInt32BE(28)} unknown`;
  if (bytes.readUInt32BE(CRC_AT) !== crc32(bytes.subarray(0, CRC_AT))) return 'checkpoint CRC mismatch';
  const state: CheckpointState = {
    physicMsgTimestamp: Number(bytes.readBigInt64BE(0)),
    logicsMsgTimestamp: Number(bytes.readBigInt64BE(8)),
    indexMsgTimestamp: Number(bytes.readBigInt64BE(16)),
    commitLogFlushedOffset: Number(bytes.readBigInt64BE(32)),
    consumeQueueFlushedOffset: Number(bytes.readBigInt64BE(40)),
    indexFlushedOffset: Number(bytes.readBigInt64BE(48)),
  };
  if (state.commitLogFlushedOffset < 0 || state.consumeQueueFlushedOffset < 0 || state.indexFlushedOffset < 0) {
    return 'checkpoint holds a negative offset';
  }
  return state;
}

/**
 * The open checkpoint file. write() blocks on its fdatasync (start, shutdown); writeAsync() runs it on
 * the thread pool for the periodic flush. The descriptor stays open until a sync in flight completes.
 */
export class CheckpointFile {
  private readonly fd: number;
  private closed = false;
  private syncsInFlight = 0;
  private closeWhenSynced = false;

  constructor(
    private readonly io: FileIo,
    readonly path: string,
  ) {
    const created = io.openSync(path, 'a+');
    io.closeSync(created);
    this.fd = io.openSync(path, 'r+');
    if (io.sizeSync(this.fd) < CHECKPOINT_FILE_BYTES) io.ftruncateSync(this.fd, CHECKPOINT_FILE_BYTES);
  }

  /** The stored state, or a reason there is none to trust (a new store says so too). */
  read(): CheckpointState | string {
    const bytes = Buffer.alloc(USED_BYTES);
    const read = this.io.readSync(this.fd, bytes, 0, USED_BYTES, 0);
    if (read < USED_BYTES) return 'checkpoint is short';
    if (bytes.every((byte) => byte === 0)) return 'no checkpoint written yet';
    return decodeCheckpoint(bytes);
  }

  /** Writes the state in place and fsyncs it (throws on an I/O error). */
  write(state: CheckpointState): void {
    if (this.closed) return;
    this.writeInPlace(state);
    this.io.fdatasyncSync(this.fd);
  }

  /**
   * write() with the fdatasync on the thread pool: resolves once the state is on disk, rejects on an
   * I/O error. The caller keeps these calls apart (one periodic flush at a time); the 60-byte write
   * itself is done at once, so a later call's bytes always land after an earlier call's.
   */
  async writeAsync(state: CheckpointState): Promise<void> {
    if (this.closed) return;
    this.writeInPlace(state);
    this.syncsInFlight++;
    try {
      await this.io.fdatasync(this.fd);
    } finally {
      this.syncsInFlight--;
      if (this.syncsInFlight === 0 && this.closeWhenSynced) {
        this.closeWhenSynced = false;
        this.io.closeSync(this.fd);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.syncsInFlight > 0) this.closeWhenSynced = true;
    else this.io.closeSync(this.fd);
  }

  private writeInPlace(state: CheckpointState): void {
    const bytes = encodeCheckpoint(state);
    let written = 0;
    while (written < bytes.length) {
      written += this.io.writeSync(this.fd, bytes, written, bytes.length - written, written);
    }
  }
}
