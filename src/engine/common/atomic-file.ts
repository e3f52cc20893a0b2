/**
 * Config and offset files are replaced atomically: write a temp file beside the target, fsync it,
 * rename it over the target, fsync the directory. A crash leaves either the old or the new content,
 * never a torn mix.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

export function writeFileAtomic(path: string, content: string | Buffer): void {
  const tempPath = `${path}.tmp`;
  writeDurableTemp(tempPath, content);
  renameSync(tempPath, path);
  fsyncDirectory(dirname(path));
}

/** The first half of an atomic replace: `tempPath` (beside the target) written and fsynced. */
function writeDurableTemp(tempPath: string, content: string | Buffer): void {
  mkdirSync(dirname(tempPath), { recursive: true });
  const fd = openSync(tempPath, 'w');
  try {
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * writeFileAtomic on the thread pool, for files rewritten while the event loop serves traffic. The
 * caller keeps at most one write per path in flight: they share the temp file.
 */
export async function writeFileAtomicAsync(path: string, content: string | Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tempPath = `${path}.tmp`;
  const file = await open(tempPath, 'w');
  try {
    await file.writeFile(content);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tempPath, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * One atomically replaced file whose rewrites come both from the event loop's hot paths (on the
 * thread pool: `write`) and from callers that cannot wait (`writeSync`, as writeFileAtomic).
 *
 * Ordering: every write is numbered when it is asked for, and the content is rendered when the
 * write starts, so it holds every change made before. Thread-pool writes run one at a time (they
 * share a temp file and would otherwise interleave); a writeSync uses its own temp file. The data
 * and its fsync go to the thread pool, but every rename happens on the event loop, and a rename is
 * skipped when a newer version already took the path: renames are totally ordered, so the file
 * never goes back to older content. A version counts as durable once the directory was fsynced
 * after its rename; `write` resolves only then, exactly what writeFileAtomic guaranteed on return.
 */
export class SerialAtomicFile {
  private readonly tempPath: string;
  private readonly syncTempPath: string;
  private requested = 0;
  /** Highest version renamed onto the path. */
  private renamed = 0;
  /** Highest version known durable (its rename was followed by a directory fsync). */
  private durable = 0;
  private running: Promise<void> | undefined;
  private render: (() => string | Buffer) | undefined;
  private readonly waiters: { version: number; resolve: () => void; reject: (err: unknown) => void }[] = [];

  constructor(readonly path: string) {
    this.tempPath = `${path}.tmp.async`;
    this.syncTempPath = `${path}.tmp`;
  }

  /**
   * Writes `render()`'s content (rendered when the write starts, so a burst of requests coalesces
   * into one write of the latest state); resolves once that content, or a newer one, is durable.
   */
  write(render: () => string | Buffer): Promise<void> {
    const version = ++this.requested;
    this.render = render;
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ version, resolve, reject }));
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
    return done;
  }

  /** True while a thread-pool write runs. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Resolves once everything asked for so far is durable (without asking for another write). */
  flushed(): Promise<void> {
    if (this.durable >= this.requested) return Promise.resolve();
    const version = this.requested;
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ version, resolve, reject }));
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
    return done;
  }

  /** writeFileAtomic, ordered with the thread-pool writes: durable on return. */
  writeSync(content: string | Buffer): void {
    writeDurableTemp(this.syncTempPath, content);
    renameSync(this.syncTempPath, this.path);
    // Numbered at its rename: newer than any thread-pool write rendered before this call.
    const version = ++this.requested;
    this.renamed = version;
    fsyncDirectory(dirname(this.path));
    this.settle(version);
  }

  /** Resolves when no thread-pool write is in flight (shutdown). */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.waiters.length > 0) {
      const version = this.requested;
      const render = this.render;
      if (render === undefined) {
        this.fail(version, new Error(`nothing to write to ${this.path}`));
        continue;
      }
      if (version <= this.durable) {
        this.settle(this.durable);
        continue;
      }
      try {
        await this.writeOnce(version, render());
        this.settle(version);
      } catch (err) {
        this.fail(version, err);
      }
    }
  }

  private async writeOnce(version: number, content: string | Buffer): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const file = await open(this.tempPath, 'w');
    try {
      await file.writeFile(content);
      await file.sync();
    } finally {
      await file.close();
    }
    // Same tick as the check: no writeSync can rename in between.
    if (version > this.renamed) {
      renameSync(this.tempPath, this.path);
      this.renamed = version;
    } else {
      await unlink(this.tempPath);
    }
    const dir = await open(dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  private settle(version: number): void {
    this.durable = Math.max(this.durable, version);
    this.release(this.durable, (waiter) => waiter.resolve());
  }

  private fail(version: number, err: unknown): void {
    this.release(version, (waiter) => waiter.reject(err));
  }

  /** Hands the waiters up to `version` to `end`, in the order they asked. */
  private release(version: number, end: (waiter: (typeof this.waiters)[number]) => void): void {
    const done = this.waiters.filter((waiter) => waiter.version <= version);
    if (done.length === 0) return;
    const rest = this.waiters.filter((waiter) => waiter.version > version);
    this.waiters.length = 0;
    this.waiters.push(...rest);
    for (const waiter of done) end(waiter);
  }
}

/** Reads a JSON file written by writeFileAtomic; undefined when it does not exist. */
export function readJsonFile<T>(path: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as T;
}
