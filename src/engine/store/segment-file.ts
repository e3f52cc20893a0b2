/**
 * One CommitLog segment: a file of fixed size named by the CommitLog offset of its first byte (20
 * zero-padded digits, RocketMQ's MappedFile naming). A new segment is created at full size with
 * ftruncate, so its unwritten tail reads as zeros and a sparse file costs no disk until written.
 * The segment knows positions inside itself; CommitLog offsets are the CommitLog's business.
 */
import { join } from 'node:path';
import { invariant } from '../common/assert.js';
import type { FileIo } from './file-io.js';

const SEGMENT_NAME_DIGITS = 20;

/** `00000000001073741824` for 1 GiB. */
export function segmentFileName(startOffset: number): string {
  return String(startOffset).padStart(SEGMENT_NAME_DIGITS, '0');
}

/** The start offset a segment file name stands for, or undefined when the name is not one. */
export function parseSegmentFileName(name: string): number | undefined {
  if (name.length !== SEGMENT_NAME_DIGITS || !/^[0-9]+$/.test(name)) return undefined;
  return Number(name);
}

export class SegmentFile {
  /** Store timestamp of the newest message written to this segment in this process (0 unknown). */
  lastStoreTimestampMs = 0;
  private fd: number;
  private closed = false;

  private constructor(
    private readonly io: FileIo,
    readonly path: string,
    /** CommitLog offset of the segment's first byte. */
    readonly startOffset: number,
    readonly sizeBytes: number,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** Creates (or reopens, after a crash during creation) the segment and sizes it to `sizeBytes`. */
  static create(io: FileIo, dir: string, startOffset: number, sizeBytes: number): SegmentFile {
    const path = join(dir, segmentFileName(startOffset));
    const fd = io.openSync(path, 'a+');
    io.closeSync(fd);
    const rw = io.openSync(path, 'r+');
    try {
      if (io.sizeSync(rw) !== sizeBytes) io.ftruncateSync(rw, sizeBytes);
    } catch (err) {
      io.closeSync(rw);
      throw err;
    }
    return new SegmentFile(io, path, startOffset, sizeBytes, rw);
  }

  /** Opens an existing segment; returns its size on disk so that the caller can check it. */
  static open(io: FileIo, dir: string, startOffset: number, sizeBytes: number): SegmentFile {
    const path = join(dir, segmentFileName(startOffset));
    const fd = io.openSync(path, 'r+');
    return new SegmentFile(io, path, startOffset, sizeBytes, fd);
  }

  /** CommitLog offset one past the segment's last byte. */
  get endOffset(): number {
    return this.startOffset + this.sizeBytes;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  sizeOnDisk(): number {
    return this.io.sizeSync(this.fd);
  }

  /** Writes all of `buffer[from, from + length)` at `position` in the file (throws on an I/O error). */
  write(buffer: Buffer, from: number, length: number, position: number): void {
    invariant(!this.closed, 'write to a closed segment');
    invariant(position >= 0 && position + length <= this.sizeBytes, 'write past the segment end');
    let written = 0;
    while (written < length) {
      written += this.io.writeSync(this.fd, buffer, from + written, length - written, position + written);
    }
  }

  /** Reads up to `length` bytes at `position` into `target`; returns the bytes read. */
  readInto(target: Buffer, targetAt: number, length: number, position: number): number {
    if (this.closed || position < 0 || position >= this.sizeBytes) return 0;
    const wanted = Math.min(length, this.sizeBytes - position);
    let read = 0;
    while (read < wanted) {
      const n = this.io.readSync(this.fd, target, targetAt + read, wanted - read, position + read);
      if (n === 0) break;
      read += n;
    }
    return read;
  }

  datasync(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.io.fdatasync(this.fd);
  }

  datasyncSync(): void {
    if (!this.closed) this.io.fdatasyncSync(this.fd);
  }

  /**
   * Zeros everything from `position` to the segment end: shrinking and regrowing the file punches the
   * tail out in two calls, however large the segment.
   */
  zeroFrom(position: number): void {
    invariant(position >= 0 && position <= this.sizeBytes, 'zero position outside the segment');
    this.io.ftruncateSync(this.fd, position);
    this.io.ftruncateSync(this.fd, this.sizeBytes);
  }

  /** Restores the full size of a file cut short (a crash between open and ftruncate). */
  ensureFullSize(): void {
    if (this.io.sizeSync(this.fd) !== this.sizeBytes) this.io.ftruncateSync(this.fd, this.sizeBytes);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.io.closeSync(this.fd);
  }

  /** Closes and removes the file. */
  destroy(): void {
    this.close();
    this.io.unlinkSync(this.path);
  }
}
