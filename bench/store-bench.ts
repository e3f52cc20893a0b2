/**
 * Storage engine benchmark (`npm run bench:store`): appends of 128 B, 1 KiB and 4 KiB messages with
 * async flush and with sync flush (64 concurrent appenders sharing group commits), a sequential read,
 * and a memory soak. Each figure is printed next to the raw limit measured in the same run: plain
 * sequential fs writes of the same record bytes under the same fsync policy.
 *
 * The messages are built before the timed loops (a pool of distinct messages, each with its own keys,
 * reused round-robin) so that the figures time the store, not the benchmark's allocations.
 *
 * Options: --messages N (per async scenario, default 200000), --sync-messages N (default 50000),
 * --soak-gib G (default 5; 0 skips the soak), --sizes 128,1024,4096 (body sizes to run),
 * --dir D (default: a temp dir, removed afterwards).
 */
import './bench-env.js';
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { encodeRecord, prepareRecord } from '../src/engine/common/message-record.js';
import type { MessageToStore } from '../src/engine/common/message.js';
import { parseTagExpression } from '../src/engine/common/tag-expression.js';
import { defaultMessageStoreConfig, type MessageStoreConfig } from '../src/engine/store/api.js';
import { DefaultMessageStore } from '../src/engine/store/message-store.js';
import { type Measurement, numberArgument, printTable, progress, stringArgument } from './bench-util.js';

const fdatasyncAsync = promisify(fdatasync);

const asyncMessages = numberArgument('messages', 200_000);
const syncMessages = numberArgument('sync-messages', 50_000);
const soakGiB = numberArgument('soak-gib', 5);
const bodySizes = (stringArgument('sizes') ?? '128,1024,4096').split(',').map(Number);
const SYNC_APPENDERS = 64;
/** Distinct messages per pool: enough that keys repeat rarely, small enough to build in a blink. */
const POOL_MESSAGES = 16_384;
const baseDir = stringArgument('dir') ?? mkdtempSync(join(tmpdir(), 'rb-bench-store-'));

function message(bodyBytes: number, sequence: number): MessageToStore {
  return {
    topic: 'bench',
    queueId: sequence % 4,
    flag: 0,
    body: Buffer.alloc(bodyBytes, sequence % 251),
    properties: { TAGS: 'TagA', KEYS: `key-${sequence}`, UNIQ_KEY: `U${sequence}` },
    sysFlag: 0,
    bornTimestamp: Date.now(),
    bornHost: { host: '127.0.0.1', port: 50000 },
    reconsumeTimes: 0,
    preparedTransactionOffset: 0,
  };
}

/** Messages built ahead of a timed loop; the function returned hands them out round-robin by sequence. */
function messagePool(bodyBytes: number, count: number): (sequence: number) => MessageToStore {
  const bodies = Array.from({ length: 251 }, (_, fill) => Buffer.alloc(bodyBytes, fill));
  const pool = Array.from({ length: Math.min(count, POOL_MESSAGES) }, (_, sequence) => ({
    ...message(0, sequence),
    body: bodies[sequence % bodies.length] ?? Buffer.alloc(bodyBytes),
  }));
  return (sequence) => pool[sequence % pool.length] ?? message(bodyBytes, sequence);
}

/** The exact record bytes the store writes, so the raw baseline writes the same amount. */
function recordBytes(bodyBytes: number): Buffer {
  return encodeRecord(prepareRecord(message(bodyBytes, 0), false), {
    queueOffset: 0,
    commitLogOffset: 0,
    storeTimestamp: Date.now(),
    storeHost: { host: '127.0.0.1', port: 10911 },
  });
}

let scenarioCounter = 0;
function freshDir(name: string): string {
  return join(baseDir, `${++scenarioCounter}-${name}`);
}

/**
 * Raw async baseline: one write() per record. Under the store's async policy (`flushIntervalMs` given)
 * an fdatasync runs on the thread pool every flushIntervalMs while the writes go on, as the store's
 * flush timer does (the next one starts flushIntervalMs after the last completed); without it, no
 * fsync at all, what the page cache alone can take. The loop yields every 256 writes so that the
 * fdatasync completions are seen (the store yields every event-loop turn).
 */
async function rawAsyncPerRecord(bodyBytes: number, count: number, flushIntervalMs?: number): Promise<Measurement> {
  const record = recordBytes(bodyBytes);
  const path = freshDir('raw-async');
  rmSync(path, { force: true });
  const fd = openSync(path, 'w');
  let flushing = false;
  let lastFlushEndMs = performance.now();
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    writeSync(fd, record);
    if (i % 256 !== 255) continue;
    if (flushIntervalMs !== undefined && !flushing && performance.now() - lastFlushEndMs >= flushIntervalMs) {
      flushing = true;
      fdatasync(fd, () => {
        flushing = false;
        lastFlushEndMs = performance.now();
      });
    }
    await new Promise(setImmediate);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  for (let waits = 0; flushing && waits < 100_000; waits++) await new Promise(setImmediate);
  closeSync(fd);
  rmSync(path, { force: true });
  const policy = flushIntervalMs === undefined ? 'no fsync' : `fsync every ${flushIntervalMs} ms`;
  return {
    scenario: `raw write()/record ${bodyBytes} B, ${policy}`,
    messages: count,
    bytes: count * record.length,
    seconds,
  };
}

/** Raw async baseline with 1 MiB writes: the page cache's bandwidth. */
function rawAsyncChunked(bodyBytes: number, count: number): Measurement {
  const record = recordBytes(bodyBytes);
  const perChunk = Math.max(1, Math.floor((1024 * 1024) / record.length));
  const chunk = Buffer.concat(Array.from({ length: perChunk }, () => record));
  const path = freshDir('raw-chunked');
  const fd = openSync(path, 'w');
  const start = process.hrtime.bigint();
  for (let written = 0; written < count; written += perChunk) writeSync(fd, chunk);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  closeSync(fd);
  rmSync(path, { force: true });
  return {
    scenario: `raw 1 MiB write() ${bodyBytes} B records`,
    messages: count,
    bytes: count * record.length,
    seconds,
  };
}

/** Raw sync baseline: 64 records written, then one fdatasync, as an ideal group commit of 64 appenders. */
async function rawSyncGroups(bodyBytes: number, count: number): Promise<Measurement> {
  const record = recordBytes(bodyBytes);
  const group = Buffer.concat(Array.from({ length: SYNC_APPENDERS }, () => record));
  const path = freshDir('raw-sync');
  const fd = openSync(path, 'w');
  const latenciesMs: number[] = [];
  const start = process.hrtime.bigint();
  for (let written = 0; written < count; written += SYNC_APPENDERS) {
    const groupStart = process.hrtime.bigint();
    writeSync(fd, group);
    await fdatasyncAsync(fd);
    latenciesMs.push(Number(process.hrtime.bigint() - groupStart) / 1e6);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  fdatasyncSync(fd);
  closeSync(fd);
  rmSync(path, { force: true });
  return {
    scenario: `raw write+fdatasync per 64 records ${bodyBytes} B`,
    messages: count,
    bytes: count * record.length,
    seconds,
    latenciesMs,
  };
}

function storeConfig(dir: string, flushPolicy: 'async' | 'sync'): MessageStoreConfig {
  return { ...defaultMessageStoreConfig, storePath: dir, flushPolicy, retentionCheckIntervalMs: 0 };
}

/** Appends with `concurrency` appenders each awaiting its put before the next. */
async function storeAppends(
  bodyBytes: number,
  count: number,
  flushPolicy: 'async' | 'sync',
  concurrency: number,
): Promise<{ measurement: Measurement; store: DefaultMessageStore; dir: string }> {
  const dir = freshDir(`store-${flushPolicy}`);
  const store = new DefaultMessageStore(storeConfig(dir, flushPolicy));
  await store.start();
  const recordLength = recordBytes(bodyBytes).length;
  const messageAt = messagePool(bodyBytes, count);
  const latenciesMs: number[] = [];
  let next = 0;
  const start = process.hrtime.bigint();
  async function appender(): Promise<void> {
    while (next < count) {
      const sequence = next++;
      // performance.now() allocates nothing (hrtime.bigint() would, per put, inside the timed loop).
      const putStart = performance.now();
      const result = await store.putMessage(messageAt(sequence));
      if (result.status !== 'PUT_OK') throw new Error(`put failed: ${result.status}`);
      latenciesMs.push(performance.now() - putStart);
      if (sequence % 10000 === 0) progress(`${flushPolicy} ${bodyBytes} B`, sequence, count);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, appender));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return {
    measurement: {
      scenario: `store ${flushPolicy} append ${bodyBytes} B (${concurrency} appenders)`,
      messages: count,
      bytes: count * recordLength,
      seconds,
      latenciesMs,
    },
    store,
    dir,
  };
}

function sequentialRead(store: DefaultMessageStore, bodyBytes: number): Measurement {
  const filter = parseTagExpression('*');
  let messages = 0;
  let bytes = 0;
  const start = process.hrtime.bigint();
  for (let queueId = 0; queueId < 4; queueId++) {
    let queueOffset = store.getMinOffsetInQueue('bench', queueId);
    for (let pulls = 0; pulls < 1_000_000; pulls++) {
      const result = store.getMessage({ topic: 'bench', queueId, queueOffset, maxMessages: 32, filter });
      if (result.records.length === 0) break;
      messages += result.records.length;
      for (const record of result.records) bytes += record.length;
      queueOffset = result.nextBeginOffset;
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { scenario: `store sequential read ${bodyBytes} B (pulls of 32)`, messages, bytes, seconds };
}

/** Raw read baseline: the CommitLog files read front to back in 1 MiB reads (page cache, as the store reads). */
function rawSequentialRead(storeDir: string, bytesToRead: number): Measurement {
  const commitLogDir = join(storeDir, 'commitlog');
  const chunk = Buffer.allocUnsafe(1024 * 1024);
  let bytes = 0;
  const start = process.hrtime.bigint();
  for (const name of readdirSync(commitLogDir).sort()) {
    const fd = openSync(join(commitLogDir, name), 'r');
    try {
      for (let position = 0; bytes < bytesToRead;) {
        const read = readSync(fd, chunk, 0, Math.min(chunk.length, bytesToRead - bytes), position);
        if (read === 0) break;
        position += read;
        bytes += read;
      }
    } finally {
      closeSync(fd);
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { scenario: 'raw 1 MiB read() of the CommitLog', messages: 0, bytes, seconds };
}

async function soak(gib: number): Promise<void> {
  const bodyBytes = 1024;
  const recordLength = recordBytes(bodyBytes).length;
  const count = Math.floor((gib * 1024 ** 3) / recordLength);
  const dir = freshDir('soak');
  const store = new DefaultMessageStore(storeConfig(dir, 'async'));
  await store.start();
  const messageAt = messagePool(bodyBytes, count);
  const rssSamplesMiB: number[] = [];
  const start = process.hrtime.bigint();
  let inFlight: Promise<unknown>[] = [];
  for (let sequence = 0; sequence < count; sequence++) {
    inFlight.push(store.putMessage(messageAt(sequence)));
    if (inFlight.length >= 256) {
      await Promise.all(inFlight);
      inFlight = [];
    }
    if (sequence % 200_000 === 0) {
      rssSamplesMiB.push(process.memoryUsage().rss / 1024 ** 2);
      progress(`soak ${gib} GiB`, sequence, count);
    }
  }
  await Promise.all(inFlight);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await store.shutdown();
  rmSync(dir, { recursive: true, force: true });
  const firstHalf = rssSamplesMiB.slice(0, Math.ceil(rssSamplesMiB.length / 2));
  const secondHalf = rssSamplesMiB.slice(Math.ceil(rssSamplesMiB.length / 2));
  console.log(
    `\nMemory soak: ${gib} GiB of 1 KiB async appends in ${seconds.toFixed(1)} s ` +
      `(${((gib * 1024) / seconds).toFixed(0)} MB/s); RSS MiB min ${Math.min(...rssSamplesMiB).toFixed(0)}, ` +
      `max ${Math.max(...rssSamplesMiB).toFixed(0)}, max of first half ${Math.max(...firstHalf).toFixed(0)}, ` +
      `max of second half ${Math.max(...secondHalf, 0).toFixed(0)} (${rssSamplesMiB.length} samples)`,
  );
}

async function main(): Promise<void> {
  console.log(`Store benchmark in ${baseDir}: ${asyncMessages} async / ${syncMessages} sync messages per size`);
  for (const bodyBytes of bodySizes) {
    const rawPerRecord = await rawAsyncPerRecord(bodyBytes, asyncMessages, defaultMessageStoreConfig.flushIntervalMs);
    const rawNoFsync = await rawAsyncPerRecord(bodyBytes, asyncMessages);
    const rawChunked = rawAsyncChunked(bodyBytes, asyncMessages);
    const asyncRun = await storeAppends(bodyBytes, asyncMessages, 'async', 64);
    const read = sequentialRead(asyncRun.store, bodyBytes);
    const rawRead = rawSequentialRead(asyncRun.dir, asyncRun.measurement.bytes);
    await asyncRun.store.shutdown();
    rmSync(asyncRun.dir, { recursive: true, force: true });
    const rawSync = await rawSyncGroups(bodyBytes, syncMessages);
    const syncRun = await storeAppends(bodyBytes, syncMessages, 'sync', SYNC_APPENDERS);
    await syncRun.store.shutdown();
    rmSync(syncRun.dir, { recursive: true, force: true });
    printTable(`${bodyBytes} B messages`, [
      { measurement: rawPerRecord },
      { measurement: rawNoFsync },
      { measurement: rawChunked },
      { measurement: asyncRun.measurement, baseline: rawPerRecord },
      {
        measurement: { ...asyncRun.measurement, scenario: '  same, vs raw per record, no fsync' },
        baseline: rawNoFsync,
      },
      { measurement: { ...asyncRun.measurement, scenario: '  same, vs raw 1 MiB writes' }, baseline: rawChunked },
      { measurement: rawRead },
      { measurement: read, baseline: rawRead },
      { measurement: rawSync },
      { measurement: syncRun.measurement, baseline: rawSync },
    ]);
  }
  if (soakGiB > 0) await soak(soakGiB);
}

try {
  await main();
} finally {
  if (stringArgument('dir') === undefined) rmSync(baseDir, { recursive: true, force: true });
}
