/**
 * The CommitLog's file I/O seam (style-anchors 15): every call the CommitLog and the checkpoint make
 * on their files goes through this small interface so that tests can inject faults (a failed write,
 * a failed fdatasync) deterministically. The store's consume queues and index use `node:fs` directly;
 * they are derived data that recovery rebuilds.
 */
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs';

/** The synchronous and asynchronous file calls the CommitLog needs. */
export interface FileIo {
  openSync(path: string, flags: string): number;
  closeSync(fd: number): void;
  /** Writes up to `length` bytes at `position`; returns the bytes written. */
  writeSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number;
  /** Reads up to `length` bytes at `position`; returns the bytes read. */
  readSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number;
  /** fdatasync on the thread pool, so the event loop keeps accepting appends. */
  fdatasync(fd: number): Promise<void>;
  fdatasyncSync(fd: number): void;
  ftruncateSync(fd: number, lengthBytes: number): void;
  sizeSync(fd: number): number;
  unlinkSync(path: string): void;
}

/** The real thing: `node:fs`. */
export const nodeFileIo: FileIo = {
  openSync: (path, flags) => openSync(path, flags),
  closeSync: (fd) => closeSync(fd),
  writeSync: (fd, buffer, offset, length, position) => writeSync(fd, buffer, offset, length, position),
  readSync: (fd, buffer, offset, length, position) => readSync(fd, buffer, offset, length, position),
  fdatasync: (fd) =>
    new Promise<void>((resolve, reject) => {
      fdatasync(fd, (err) => (err ? reject(err) : resolve()));
    }),
  fdatasyncSync: (fd) => fdatasyncSync(fd),
  ftruncateSync: (fd, lengthBytes) => ftruncateSync(fd, lengthBytes),
  sizeSync: (fd) => fstatSync(fd).size,
  unlinkSync: (path) => unlinkSync(path),
};

/**
 * A FileIo that fails on demand: tests flip `failWrites` / `failSyncs` to make the next calls throw
 * an errno error (ENOSPC by default), the way a full disk would.
 */
export class FaultyFileIo implements FileIo {
  failWrites = false;
  failSyncs = false;
  errorCode = 'ENOSPC';
  writeCalls = 0;
  syncCalls = 0;

  constructor(private readonly inner: FileIo = nodeFileIo) {}

  private fault(syscall: string): NodeJS.ErrnoException {
    const err: NodeJS.ErrnoException = new Error(`${this.errorCode}: injected fault, ${syscall}`);
    err.code = this.errorCode;
    err.syscall = syscall;
    return err;
  }

  openSync(path: string, flags: string): number {
    return this.inner.openSync(path, flags);
  }
  closeSync(fd: number): void {
    this.inner.closeSync(fd);
  }
  writeSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number {
    this.writeCalls++;
    if (this.failWrites) throw this.fault('write');
    return this.inner.writeSync(fd, buffer, offset, length, position);
  }
  readSync(fd: number, buffer: Buffer, offset: number, length: number, position: number): number {
    return this.inner.readSync(fd, buffer, offset, length, position);
  }
  fdatasync(fd: number): Promise<void> {
    this.syncCalls++;
    if (this.failSyncs) return Promise.reject(this.fault('fdatasync'));
    return this.inner.fdatasync(fd);
  }
  fdatasyncSync(fd: number): void {
    this.syncCalls++;
    if (this.failSyncs) throw this.fault('fdatasync');
    this.inner.fdatasyncSync(fd);
  }
  ftruncateSync(fd: number, lengthBytes: number): void {
    this.inner.ftruncateSync(fd, lengthBytes);
  }
  sizeSync(fd: number): number {
    return this.inner.sizeSync(fd);
  }
  unlinkSync(path: string): void {
    this.inner.unlinkSync(path);
  }
}
