import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InvariantError } from '../../../src/engine/common/assert.js';
import { ErrorCode, isRbError } from '../../../src/engine/common/errors.js';
import { javaStringHashCode } from '../../../src/engine/common/java-hash.js';
import {
  ConsumeQueue,
  ConsumeQueueTable,
  CQ_UNIT_BYTES,
  type ConsumeQueueUnit,
} from '../../../src/engine/store/consume-queue.js';
import { makeTempDir } from '../../helpers/temp-dir.js';

const RECORD_BYTES = 100;

/** Unit n of a test queue: records of 100 bytes laid end to end from `firstCommitLogOffset`. */
function unitAt(queueOffset: number, firstCommitLogOffset = 0): ConsumeQueueUnit {
  return {
    queueOffset,
    commitLogOffset: firstCommitLogOffset + queueOffset * RECORD_BYTES,
    size: RECORD_BYTES,
    tagsCode: javaStringHashCode(`tag-${queueOffset}`),
  };
}

function fileName(startByte: number): string {
  return String(startByte).padStart(20, '0');
}

describe('ConsumeQueue', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let dirCount = 0;
  before(async () => {
    ({ dir: root, cleanup } = await makeTempDir('rb-cq-'));
  });
  after(async () => cleanup());

  function openQueue(dir: string, unitsPerFile = 4): ConsumeQueue {
    const queue = new ConsumeQueue({ dir, topic: 'orders', queueId: 1, unitsPerFile });
    queue.load();
    return queue;
  }

  function freshDir(): string {
    return join(root, `q${++dirCount}`, 'orders', '1');
  }

  function fill(queue: ConsumeQueue, count: number, from = queue.maxQueueOffset()): void {
    for (let q = from; q < from + count; q++) assert.equal(queue.putUnit(unitAt(q)), true);
  }

  it('round-trips units across file boundaries, before and after they reach the files', () => {
    const dir = freshDir();
    const queue = openQueue(dir);
    fill(queue, 10);
    assert.deepEqual(
      queue.getUnits(0, 100),
      Array.from({ length: 10 }, (_, q) => unitAt(q)),
    );
    assert.deepEqual(queue.getUnits(3, 4), [unitAt(3), unitAt(4), unitAt(5), unitAt(6)]);
    queue.flush();
    assert.deepEqual(
      queue.getUnits(0, 100),
      Array.from({ length: 10 }, (_, q) => unitAt(q)),
    );
    assert.deepEqual(readdirSync(dir).sort(), [fileName(0), fileName(80), fileName(160)]);
    for (const name of readdirSync(dir)) assert.equal(statSync(join(dir, name)).size, 4 * CQ_UNIT_BYTES);
    assert.equal(queue.minQueueOffset(), 0);
    assert.equal(queue.maxQueueOffset(), 10);
    assert.deepEqual(queue.lastUnit(), unitAt(9));
    queue.close();
  });

  it('serves long reads that span write batches, read chunks, files and buffered units', () => {
    const dir = freshDir();
    const queue = openQueue(dir, 5000);
    fill(queue, 10_007);
    const all = queue.getUnits(0, 20_000);
    assert.equal(all.length, 10_007);
    for (const [q, unit] of all.entries()) assert.deepEqual(unit, unitAt(q));
    assert.deepEqual(
      queue.getUnits(4998, 4).map((unit) => unit.queueOffset),
      [4998, 4999, 5000, 5001],
    );
    queue.close();
    assert.equal(openQueue(dir, 5000).maxQueueOffset(), 10_007);
  });

  it('writes units big-endian as commitLogOffset 8, size 4, sign-extended tagsCode 8', () => {
    const dir = freshDir();
    const queue = openQueue(dir);
    const unit = { queueOffset: 0, commitLogOffset: 5 * 2 ** 32 + 7, size: 321, tagsCode: javaStringHashCode('TagA') };
    assert.ok(unit.tagsCode !== 0);
    queue.putUnit(unit);
    queue.putUnit({ queueOffset: 1, commitLogOffset: 6 * 2 ** 32, size: 10, tagsCode: -1 });
    queue.close();
    const bytes = readFileSync(join(dir, fileName(0)));
    assert.equal(bytes.readBigInt64BE(0), BigInt(unit.commitLogOffset));
    assert.equal(bytes.readInt32BE(8), 321);
    assert.equal(bytes.readBigInt64BE(12), BigInt(unit.tagsCode));
    assert.equal(bytes.readBigInt64BE(32), -1n);
    assert.deepEqual(openQueue(dir).getUnits(0, 2), [
      unit,
      { queueOffset: 1, commitLogOffset: 6 * 2 ** 32, size: 10, tagsCode: -1 },
    ]);
  });

  it('skips a unit below the max offset, as an idempotent replay', () => {
    const queue = openQueue(freshDir());
    fill(queue, 6);
    assert.equal(queue.putUnit({ ...unitAt(2), tagsCode: 42 }), false);
    assert.equal(queue.maxQueueOffset(), 6);
    assert.deepEqual(queue.getUnits(2, 1), [unitAt(2)]);
    queue.close();
  });

  it('throws an InvariantError on a unit that would leave a gap', () => {
    const queue = openQueue(freshDir());
    fill(queue, 3);
    assert.throws(() => queue.putUnit(unitAt(5)), InvariantError);
    assert.equal(queue.maxQueueOffset(), 3);
    queue.close();
  });

  it('starts a queue without files at its first unit, marking the units before it as fillers', () => {
    const dir = freshDir();
    const queue = openQueue(dir);
    fill(queue, 3, 6);
    assert.equal(queue.minQueueOffset(), 6);
    assert.equal(queue.maxQueueOffset(), 9);
    assert.deepEqual(queue.getUnits(5, 10), []);
    assert.deepEqual(queue.getUnits(6, 10), [unitAt(6), unitAt(7), unitAt(8)]);
    queue.close();
    const reloaded = openQueue(dir);
    assert.equal(reloaded.minQueueOffset(), 6);
    assert.equal(reloaded.maxQueueOffset(), 9);
    assert.deepEqual(reloaded.getUnits(6, 10), [unitAt(6), unitAt(7), unitAt(8)]);
    reloaded.close();
  });

  it('drops the units whose record ends past a CommitLog truncation, on disk and in memory', () => {
    const dir = freshDir();
    const queue = openQueue(dir);
    fill(queue, 9);
    queue.flush();
    fill(queue, 2);
    // Unit 5 ends at 600: a cut at 650 keeps 0..5, drops 6..10 (both files past it and buffered units).
    queue.truncateByCommitLogOffset(650);
    assert.equal(queue.maxQueueOffset(), 6);
    assert.deepEqual(queue.lastUnit(), unitAt(5));
    assert.deepEqual(
      queue.getUnits(0, 100),
      Array.from({ length: 6 }, (_, q) => unitAt(q)),
    );
    assert.deepEqual(readdirSync(dir).sort(), [fileName(0), fileName(80)]);
    fill(queue, 3);
    queue.close();
    const reloaded = openQueue(dir);
    assert.equal(reloaded.maxQueueOffset(), 9);
    assert.deepEqual(
      reloaded.getUnits(0, 100),
      Array.from({ length: 9 }, (_, q) => unitAt(q)),
    );
    reloaded.truncateByCommitLogOffset(0);
    assert.equal(reloaded.maxQueueOffset(), 0);
    assert.equal(reloaded.minQueueOffset(), 0);
    assert.equal(reloaded.lastUnit(), undefined);
    assert.deepEqual(reloaded.getUnits(0, 10), []);
    reloaded.close();
    assert.equal(openQueue(dir).maxQueueOffset(), 0);
  });

  it('deletes expired files whole and moves the min offset into the first file kept', () => {
    const dir = freshDir();
    const queue = openQueue(dir);
    fill(queue, 10);
    queue.flush();
    // CommitLog now starts at 550: units 0..5 start below it; files [0,4) go, [4,8) stays from unit 6.
    queue.deleteExpired(550);
    assert.deepEqual(readdirSync(dir).sort(), [fileName(80), fileName(160)]);
    assert.equal(queue.minQueueOffset(), 6);
    assert.equal(queue.maxQueueOffset(), 10);
    assert.deepEqual(queue.getUnits(5, 10), []);
    assert.deepEqual(queue.getUnits(6, 10), [unitAt(6), unitAt(7), unitAt(8), unitAt(9)]);
    // Everything expired: the newest file stays so the max offset survives a reload.
    queue.deleteExpired(10_000);
    assert.deepEqual(readdirSync(dir), [fileName(160)]);
    assert.equal(queue.minQueueOffset(), 10);
    assert.equal(queue.maxQueueOffset(), 10);
    assert.deepEqual(queue.lastUnit(), unitAt(9));
    queue.close();
    const reloaded = openQueue(dir);
    assert.equal(reloaded.maxQueueOffset(), 10);
    reloaded.deleteExpired(10_000);
    assert.equal(reloaded.minQueueOffset(), 10);
    fill(reloaded, 1);
    assert.deepEqual(reloaded.getUnits(10, 5), [unitAt(10)]);
    reloaded.close();
  });

  it('keeps every unit, the max offset and the last unit across close and reload', () => {
    const dir = freshDir();
    const queue = openQueue(dir, 5);
    fill(queue, 13);
    queue.close();
    const reloaded = openQueue(dir, 5);
    assert.equal(reloaded.minQueueOffset(), 0);
    assert.equal(reloaded.maxQueueOffset(), 13);
    assert.deepEqual(reloaded.lastUnit(), unitAt(12));
    assert.deepEqual(
      reloaded.getUnits(0, 100),
      Array.from({ length: 13 }, (_, q) => unitAt(q)),
    );
    fill(reloaded, 2);
    assert.deepEqual(reloaded.getUnits(12, 100), [unitAt(12), unitAt(13), unitAt(14)]);
    reloaded.close();
  });

  it('loses only unflushed units when the process dies without closing', () => {
    const dir = freshDir();
    const crashed = openQueue(dir);
    fill(crashed, 6);
    crashed.flush();
    fill(crashed, 3);
    // No close: the buffered units never reach the files.
    const recovered = openQueue(dir);
    assert.equal(recovered.maxQueueOffset(), 6);
    assert.deepEqual(
      recovered.getUnits(0, 100),
      Array.from({ length: 6 }, (_, q) => unitAt(q)),
    );
    fill(recovered, 3);
    recovered.close();
    assert.equal(openQueue(dir).maxQueueOffset(), 9);
  });

  it('finds the last valid unit after a crash zeroed a unit and left stale units after it', () => {
    const dir = freshDir();
    const queue = openQueue(dir, 8);
    fill(queue, 7);
    queue.close();
    // Unit 4's page never reached the disk, units 5 and 6 did.
    const fd = openSync(join(dir, fileName(0)), 'r+');
    writeSync(fd, Buffer.alloc(CQ_UNIT_BYTES), 0, CQ_UNIT_BYTES, 4 * CQ_UNIT_BYTES);
    closeSync(fd);
    const recovered = openQueue(dir, 8);
    assert.equal(recovered.maxQueueOffset(), 4);
    assert.deepEqual(recovered.lastUnit(), unitAt(3));
    // Re-dispatch writes unit 4 again; units 5 and 6 must not reappear by themselves.
    recovered.putUnit(unitAt(4));
    recovered.close();
    const again = openQueue(dir, 8);
    assert.equal(again.maxQueueOffset(), 5);
    again.close();
  });

  it('recovers from a newest file cut short or left empty by a crash', () => {
    const dir = freshDir();
    const queue = openQueue(dir);
    fill(queue, 10);
    queue.close();
    // The newest file lost its last unit's bytes: it is extended and ends at unit 8.
    truncateSync(join(dir, fileName(160)), CQ_UNIT_BYTES + 7);
    let recovered = openQueue(dir);
    assert.equal(recovered.maxQueueOffset(), 9);
    assert.equal(statSync(join(dir, fileName(160))).size, 4 * CQ_UNIT_BYTES);
    // A file created just before the crash, never written: deleted, the end is in the file before it.
    recovered.putUnit(unitAt(9));
    recovered.close();
    writeFileSync(join(dir, fileName(240)), Buffer.alloc(0));
    recovered = openQueue(dir);
    assert.equal(recovered.maxQueueOffset(), 10);
    assert.deepEqual(readdirSync(dir).sort(), [fileName(0), fileName(80), fileName(160)]);
    fill(recovered, 2);
    assert.deepEqual(recovered.getUnits(8, 5), [unitAt(8), unitAt(9), unitAt(10), unitAt(11)]);
    recovered.close();
  });

  it('refuses files that do not fit unitsPerFile with a clear error, and ignores stray files', () => {
    const dir = freshDir();
    const queue = openQueue(dir);
    fill(queue, 10);
    queue.close();
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    const reloaded = openQueue(dir);
    assert.equal(reloaded.maxQueueOffset(), 10);
    reloaded.close();

    // Another unitsPerFile: the file names are no longer multiples of the file size.
    assert.throws(
      () => openQueue(dir, 3),
      (err: unknown) => isRbError(err, ErrorCode.ConfigInvalid) && /units per file/.test(err.message),
    );
    // A middle file of the wrong size.
    truncateSync(join(dir, fileName(80)), 50);
    assert.throws(
      () => openQueue(dir),
      (err: unknown) => isRbError(err, ErrorCode.CorruptRecord) && err.message.includes(fileName(80)),
    );
  });

  it('refuses writes after close', () => {
    const queue = openQueue(freshDir());
    queue.close();
    assert.throws(
      () => queue.putUnit(unitAt(0)),
      (err: unknown) => isRbError(err, ErrorCode.StoreClosed),
    );
  });
});

describe('ConsumeQueueTable', () => {
  it('loads every topic/queueId directory, creates queues on demand and closes them all', async () => {
    const { dir, cleanup } = await makeTempDir('rb-cqt-');
    try {
      const table = new ConsumeQueueTable({ rootDir: dir, unitsPerFile: 4 });
      table.load();
      assert.deepEqual(table.all(), []);
      assert.equal(table.get('orders', 0), undefined);
      const orders0 = table.getOrCreate('orders', 0);
      assert.equal(table.getOrCreate('orders', 0), orders0);
      orders0.putUnit(unitAt(0));
      orders0.putUnit(unitAt(1));
      table.getOrCreate('%RETRY%group', 3).putUnit(unitAt(0));
      table.flushAll();
      table.closeAll();
      assert.ok(existsSync(join(dir, 'orders', '0', fileName(0))));

      writeFileSync(join(dir, 'stray-file'), 'x');
      mkdirSync(join(dir, 'orders', 'not-a-queue'));
      const reloaded = new ConsumeQueueTable({ rootDir: dir, unitsPerFile: 4 });
      reloaded.load();
      const loaded = reloaded
        .all()
        .map((queue) => `${queue.topic}/${queue.queueId}:${queue.maxQueueOffset()}`)
        .sort();
      assert.deepEqual(loaded, ['%RETRY%group/3:1', 'orders/0:2']);
      assert.deepEqual(reloaded.get('orders', 0)?.getUnits(0, 10), [unitAt(0), unitAt(1)]);
      reloaded.closeAll();
    } finally {
      await cleanup();
    }
  });
});
