import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { javaStringHashCode } from '../../../src/engine/common/java-hash.js';
import {
  INDEX_ENTRY_BYTES,
  INDEX_HEADER_BYTES,
  INDEX_SLOT_BYTES,
  indexFileBytes,
  indexKeyHash,
  indexKeyHashOf,
} from '../../../src/engine/store/index-file.js';
import { IndexService } from '../../../src/engine/store/index-service.js';
import { makeTempDir } from '../../helpers/temp-dir.js';

const BASE_MS = 1_700_000_000_000;
const SLOTS = 8;
/** Entry 0 is unused: 5 entries hold 4 keys. */
const ENTRIES = 5;
const ALL_TIME: [number, number] = [0, Number.MAX_SAFE_INTEGER];

describe('IndexService', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let dirCount = 0;
  before(async () => {
    ({ dir: root, cleanup } = await makeTempDir('rb-index-'));
  });
  after(async () => cleanup());

  function freshDir(): string {
    return join(root, `index${++dirCount}`);
  }

  function openIndex(dir: string, slotsPerFile = SLOTS, entriesPerFile = ENTRIES): IndexService {
    const index = new IndexService({ dir, slotsPerFile, entriesPerFile });
    index.load();
    return index;
  }

  /** Message n: offset 1000 * n, stored n seconds after BASE_MS, with key `k<n % 3>` and `u<n>`. */
  function putMessages(index: IndexService, from: number, to: number): void {
    for (let n = from; n < to; n++) {
      index.put('orders', `k${n % 3}`, 1000 * n, BASE_MS + n * 1000);
      index.put('orders', `u${n}`, 1000 * n, BASE_MS + n * 1000);
    }
  }

  it('finds keys by time range across several small files, newest first', () => {
    const dir = freshDir();
    const index = openIndex(dir);
    putMessages(index, 0, 12); // 24 keys, 4 per file: 6 files
    assert.equal(readdirSync(dir).length, 6);
    assert.deepEqual(index.query('orders', 'k1', 100, ...ALL_TIME), [10_000, 7000, 4000, 1000]);
    assert.deepEqual(index.query('orders', 'u5', 100, ...ALL_TIME), [5000]);
    assert.deepEqual(index.query('orders', 'k0', 100, BASE_MS + 3000, BASE_MS + 9000), [9000, 6000, 3000]);
    assert.deepEqual(index.query('orders', 'k0', 100, BASE_MS + 3001, BASE_MS + 8999), [6000]);
    assert.deepEqual(index.query('orders', 'k2', 100, BASE_MS + 20_000, BASE_MS + 30_000), []);
    assert.deepEqual(index.query('other-topic', 'k1', 100, ...ALL_TIME), []);
    assert.deepEqual(index.query('orders', 'missing', 100, ...ALL_TIME), []);
    assert.equal(index.maxIndexedCommitLogOffset(), 11_000);
    index.close();
  });

  it('hashes topic and key as RocketMQ hashes the key "topic#key"', () => {
    for (const [topic, key] of [
      ['orders', 'Aa'],
      ['orders', ''],
      ['%RETRY%group', '7F00000100002A9F0000000000000001'],
      ['t\u00e9pic', 'cl\u00e9 \ud83d\ude00'],
      ['a'.repeat(127), 'k'.repeat(200)],
    ] as const) {
      assert.equal(indexKeyHashOf(topic, key), indexKeyHash(`${topic}#${key}`));
    }
  });

  it('returns every candidate of keys that share a hash code, and filters other keys of the slot', () => {
    const index = openIndex(freshDir());
    // "Aa" and "BB" have the same Java hash code, so "orders#Aa" and "orders#BB" do too.
    assert.equal(javaStringHashCode('orders#Aa'), javaStringHashCode('orders#BB'));
    // Two more keys that land in one slot with different hashes.
    const keys = Array.from({ length: 50 }, (_, i) => `key${i}`);
    const slotOf = (key: string): number => indexKeyHash(`orders#${key}`) % SLOTS;
    const first = keys[0]!;
    const sameSlot = keys.find((key) => key !== first && slotOf(key) === slotOf(first))!;
    assert.notEqual(indexKeyHash(`orders#${first}`), indexKeyHash(`orders#${sameSlot}`));

    index.put('orders', 'Aa', 100, BASE_MS);
    index.put('orders', first, 200, BASE_MS);
    index.put('orders', 'BB', 300, BASE_MS);
    index.put('orders', sameSlot, 400, BASE_MS);
    index.put('orders', first, 500, BASE_MS);
    assert.deepEqual(index.query('orders', 'Aa', 10, ...ALL_TIME), [300, 100]);
    assert.deepEqual(index.query('orders', 'BB', 10, ...ALL_TIME), [300, 100]);
    assert.deepEqual(index.query('orders', first, 10, ...ALL_TIME), [500, 200]);
    assert.deepEqual(index.query('orders', sameSlot, 10, ...ALL_TIME), [400]);
    index.close();
  });

  it('stops at maxCount, newest first', () => {
    const index = openIndex(freshDir());
    putMessages(index, 0, 12);
    assert.deepEqual(index.query('orders', 'k2', 2, ...ALL_TIME), [11_000, 8000]);
    assert.deepEqual(index.query('orders', 'k2', 1, ...ALL_TIME), [11_000]);
    assert.deepEqual(index.query('orders', 'k2', 0, ...ALL_TIME), []);
    index.close();
  });

  it('skips keys below the newest indexed offset, as a replay, and returns an offset once', () => {
    const index = openIndex(freshDir());
    putMessages(index, 0, 4);
    index.put('orders', 'k0', 1000, BASE_MS + 1000);
    index.put('orders', 'k0', 3000, BASE_MS + 3000);
    assert.deepEqual(index.query('orders', 'k0', 10, ...ALL_TIME), [3000, 0]);
    index.close();
  });

  it('truncates entries at and past a CommitLog offset, so that they can be indexed again', () => {
    const dir = freshDir();
    const index = openIndex(dir);
    putMessages(index, 0, 12);
    // Cut at 5000: messages 5.. go. File 3 holds messages 4 and 5: its tail goes, files 4..6 go whole.
    index.truncateByCommitLogOffset(5000);
    assert.equal(index.maxIndexedCommitLogOffset(), 4000);
    assert.equal(readdirSync(dir).length, 3);
    assert.deepEqual(index.query('orders', 'k1', 100, ...ALL_TIME), [4000, 1000]);
    assert.deepEqual(index.query('orders', 'u7', 100, ...ALL_TIME), []);
    // A cut inside a file: message 3's keys are entries 3 and 4 of file 2.
    index.truncateByCommitLogOffset(3000);
    assert.equal(index.maxIndexedCommitLogOffset(), 2000);
    assert.deepEqual(index.query('orders', 'k0', 100, ...ALL_TIME), [0]);
    assert.deepEqual(index.query('orders', 'u3', 100, ...ALL_TIME), []);
    assert.deepEqual(index.query('orders', 'u2', 100, ...ALL_TIME), [2000]);
    putMessages(index, 3, 8);
    assert.deepEqual(index.query('orders', 'k0', 100, ...ALL_TIME), [6000, 3000, 0]);
    assert.deepEqual(index.query('orders', 'u3', 100, ...ALL_TIME), [3000]);
    index.close();
    const reloaded = openIndex(dir);
    assert.equal(reloaded.maxIndexedCommitLogOffset(), 7000);
    assert.deepEqual(reloaded.query('orders', 'k1', 100, ...ALL_TIME), [7000, 4000, 1000]);
    reloaded.truncateByCommitLogOffset(0);
    assert.equal(reloaded.maxIndexedCommitLogOffset(), -1);
    assert.deepEqual(reloaded.query('orders', 'k1', 100, ...ALL_TIME), []);
    assert.deepEqual(readdirSync(dir), []);
    reloaded.close();
  });

  it('keeps every entry across close and reload, and keeps appending to the newest file', () => {
    const dir = freshDir();
    const index = openIndex(dir);
    putMessages(index, 0, 5); // 10 keys: files of 4, 4, 2
    index.close();
    const reloaded = openIndex(dir);
    assert.equal(reloaded.maxIndexedCommitLogOffset(), 4000);
    assert.deepEqual(reloaded.query('orders', 'k1', 100, ...ALL_TIME), [4000, 1000]);
    putMessages(reloaded, 5, 6);
    assert.equal(readdirSync(dir).length, 3);
    assert.deepEqual(reloaded.query('orders', 'k2', 100, ...ALL_TIME), [5000, 2000]);
    reloaded.close();
    const names = readdirSync(dir).sort();
    assert.ok(
      names.every((name) => /^\d{17}$/.test(name)),
      names.join(),
    );
  });

  it('deletes whole files whose entries all point below the CommitLog min, never the newest', () => {
    const dir = freshDir();
    const index = openIndex(dir);
    putMessages(index, 0, 12); // file i holds messages 2i and 2i+1
    index.deleteExpired(4000);
    assert.equal(readdirSync(dir).length, 4);
    assert.deepEqual(index.query('orders', 'k1', 100, ...ALL_TIME), [10_000, 7000, 4000]);
    index.deleteExpired(1_000_000);
    assert.equal(readdirSync(dir).length, 1);
    assert.deepEqual(index.query('orders', 'k1', 100, ...ALL_TIME), [10_000]);
    assert.equal(index.maxIndexedCommitLogOffset(), 11_000);
    index.close();
  });

  it('writes the RocketMQ IndexFile layout', () => {
    const dir = freshDir();
    const index = openIndex(dir, 16, 10);
    index.put('orders', 'alpha', 5 * 2 ** 32 + 9, BASE_MS);
    index.put('orders', 'beta', 5 * 2 ** 32 + 200, BASE_MS + 2500);
    index.flush();
    const [name] = readdirSync(dir);
    const bytes = readFileSync(join(dir, name!));
    assert.equal(bytes.length, indexFileBytes({ slotsPerFile: 16, entriesPerFile: 10 }));
    assert.equal(bytes.readBigInt64BE(0), BigInt(BASE_MS));
    assert.equal(bytes.readBigInt64BE(8), BigInt(BASE_MS + 2500));
    assert.equal(bytes.readBigInt64BE(16), BigInt(5 * 2 ** 32 + 9));
    assert.equal(bytes.readBigInt64BE(24), BigInt(5 * 2 ** 32 + 200));
    assert.equal(bytes.readInt32BE(32), 2); // hashSlotCount counts puts
    assert.equal(bytes.readInt32BE(36), 3); // indexCount: next entry
    const betaHash = Math.abs(javaStringHashCode('orders#beta'));
    assert.equal(bytes.readInt32BE(INDEX_HEADER_BYTES + (betaHash % 16) * INDEX_SLOT_BYTES), 2);
    const entry2 = INDEX_HEADER_BYTES + 16 * INDEX_SLOT_BYTES + 2 * INDEX_ENTRY_BYTES;
    assert.equal(bytes.readInt32BE(entry2), betaHash);
    assert.equal(bytes.readBigInt64BE(entry2 + 4), BigInt(5 * 2 ** 32 + 200));
    assert.equal(bytes.readInt32BE(entry2 + 12), 2); // seconds since beginTimestamp
    index.close();
  });

  it('loses only unflushed entries when the process dies without closing', () => {
    const dir = freshDir();
    const crashed = openIndex(dir, 8, 100);
    putMessages(crashed, 0, 3);
    crashed.flush();
    putMessages(crashed, 3, 6);
    const recovered = openIndex(dir, 8, 100);
    assert.equal(recovered.maxIndexedCommitLogOffset(), 2000);
    assert.deepEqual(recovered.query('orders', 'k0', 100, ...ALL_TIME), [0]);
    putMessages(recovered, 3, 6);
    assert.deepEqual(recovered.query('orders', 'k0', 100, ...ALL_TIME), [3000, 0]);
    recovered.close();
  });

  it('writes a large slot table over several turns while puts go on, and a crash after it loses nothing flushed', async () => {
    const dir = freshDir();
    // 4 MB of slots (62 chunks of 64 KB): the periodic flush writes them in several slices.
    const slots = 1_000_000;
    const crashed = openIndex(dir, slots, 200_000);
    // Random keys, so that keys put during the flush share slots with keys put before it. Their index
    // hashes are distinct: a query matches by hash (as RocketMQ's does), and among 23,000 random keys
    // two share a 31-bit hash in about one run in twenty, which would return each other's offsets.
    const usedHashes = new Set<number>();
    const randomKey = (): string => {
      for (;;) {
        const key = randomBytes(8).toString('hex');
        const hash = indexKeyHashOf('orders', key);
        if (usedHashes.has(hash)) continue;
        usedHashes.add(hash);
        return key;
      }
    };
    const beforeKeys = Array.from({ length: 20_000 }, randomKey);
    beforeKeys.forEach((key, n) => crashed.put('orders', key, 1000 * n, BASE_MS + n));
    const duringKeys: string[] = [];
    let turnsDuringFlush = 0;
    let flushing = true;
    const flushed = crashed.flushAsync().finally(() => (flushing = false));
    while (flushing) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      turnsDuringFlush++;
      // Fewer than a batch of entries in all, so that they stay unwritten unless the flush writes them.
      for (let k = 0; k < 100 && duringKeys.length < 3000; k++) {
        const key = randomKey();
        crashed.put('orders', key, 1000 * (beforeKeys.length + duringKeys.length), BASE_MS + beforeKeys.length);
        duringKeys.push(key);
      }
    }
    await flushed;
    assert.ok(turnsDuringFlush >= 3, `the flush took ${turnsDuringFlush} turns`);
    // The process dies here: nothing after the flush is written.
    const recovered = openIndex(dir, slots, 200_000);
    assert.equal(recovered.maxIndexedCommitLogOffset(), 1000 * (beforeKeys.length - 1));
    const lost = beforeKeys.filter((key, n) => recovered.query('orders', key, 10, ...ALL_TIME)[0] !== 1000 * n);
    assert.deepEqual(lost, []);
    // Keys the header did not claim are gone, not misattributed, and can be indexed again.
    for (const key of duringKeys) assert.deepEqual(recovered.query('orders', key, 10, ...ALL_TIME), []);
    recovered.put('orders', duringKeys[0]!, 1000 * beforeKeys.length, BASE_MS + beforeKeys.length);
    assert.deepEqual(recovered.query('orders', duringKeys[0]!, 10, ...ALL_TIME), [1000 * beforeKeys.length]);
    recovered.close();
    crashed.close();
  });

  it('repairs slots that a crash left pointing past the header', () => {
    const dir = freshDir();
    const index = openIndex(dir, 8, 100);
    putMessages(index, 0, 3);
    index.flush();
    const [name] = readdirSync(dir);
    const path = join(dir, name!);
    const oldHeader = Buffer.alloc(INDEX_HEADER_BYTES);
    let fd = openSync(path, 'r');
    readSync(fd, oldHeader, 0, INDEX_HEADER_BYTES, 0);
    closeSync(fd);
    putMessages(index, 3, 6);
    index.flush();
    // The crash hit after the entries and slots were written, before the header.
    fd = openSync(path, 'r+');
    writeSync(fd, oldHeader, 0, INDEX_HEADER_BYTES, 0);
    closeSync(fd);
    const recovered = openIndex(dir, 8, 100);
    assert.equal(recovered.maxIndexedCommitLogOffset(), 2000);
    assert.deepEqual(recovered.query('orders', 'k1', 100, ...ALL_TIME), [1000]);
    assert.deepEqual(recovered.query('orders', 'u4', 100, ...ALL_TIME), []);
    putMessages(recovered, 3, 6);
    assert.deepEqual(recovered.query('orders', 'k1', 100, ...ALL_TIME), [4000, 1000]);
    recovered.close();
    assert.deepEqual(openIndex(dir, 8, 100).query('orders', 'k2', 100, ...ALL_TIME), [5000, 2000]);
  });

  it('ignores files of the wrong size or with a garbage header, with a logged reason', () => {
    const dir = freshDir();
    const index = openIndex(dir);
    putMessages(index, 0, 2);
    index.close();
    const size = indexFileBytes({ slotsPerFile: SLOTS, entriesPerFile: ENTRIES });
    writeFileSync(join(dir, '99990101000000000'), Buffer.alloc(size, 0xff));
    writeFileSync(join(dir, '99990101000000001'), Buffer.alloc(17));
    writeFileSync(join(dir, 'README'), 'not an index file');
    const reloaded = openIndex(dir);
    assert.equal(reloaded.maxIndexedCommitLogOffset(), 1000);
    assert.deepEqual(reloaded.query('orders', 'k1', 100, ...ALL_TIME), [1000]);
    putMessages(reloaded, 2, 5);
    assert.deepEqual(reloaded.query('orders', 'k1', 100, ...ALL_TIME), [4000, 1000]);
    reloaded.close();
    // New files are named after the ignored ones, so they load in order.
    const again = openIndex(dir);
    assert.deepEqual(again.query('orders', 'k1', 100, ...ALL_TIME), [4000, 1000]);
    assert.equal(again.maxIndexedCommitLogOffset(), 4000);
    again.close();
  });
});
