/**
 * CommitLog behaviour through DefaultMessageStore: segment layout, blank records, write batching,
 * both flush policies and group commit.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BLANK_MAGIC_CODE, decodeRecord } from '../../../src/engine/common/message-record.js';
import type { MessageToStore } from '../../../src/engine/common/message.js';
import { parseTagExpression } from '../../../src/engine/common/tag-expression.js';
import { type MessageStoreConfig, PutStatus } from '../../../src/engine/store/api.js';
import { type FileIo, nodeFileIo } from '../../../src/engine/store/file-io.js';
import { DefaultMessageStore, type MessageStoreOptions } from '../../../src/engine/store/message-store.js';
import { eventually } from '../../helpers/eventually.js';
import { testMessage, withStore as withTestStore } from '../../helpers/store.js';

function message(sequence: number, overrides: Partial<MessageToStore> = {}): MessageToStore {
  return testMessage(sequence, { body: Buffer.alloc(200 + ((sequence * 37) % 900), sequence % 251), ...overrides });
}

function withStore(
  overrides: Partial<MessageStoreConfig>,
  body: (store: DefaultMessageStore, config: MessageStoreConfig) => Promise<void>,
  options: MessageStoreOptions = {},
): Promise<void> {
  return withTestStore('rb-commitlog-', overrides, body, options);
}

const all = parseTagExpression('*');

describe('CommitLog', () => {
  it('round-trips records across segment boundaries, ending each full segment with a blank record', async () => {
    await withStore({ commitLogSegmentBytes: 8192 }, async (store, config) => {
      const results = [];
      for (let i = 0; i < 60; i++) results.push(await store.putMessage(message(i)));
      for (const [i, result] of results.entries()) {
        assert.equal(result.status, PutStatus.Ok);
        assert.equal(result.queueOffset, i);
        const stored = store.lookMessageByOffset(result.commitLogOffset);
        assert.ok(stored, `record ${i} readable`);
        assert.deepEqual(stored.body, message(i).body);
        assert.equal(stored.msgId, result.msgIds[0]);
        // No record crosses a segment end.
        const segmentEnd = result.commitLogOffset - (result.commitLogOffset % 8192) + 8192;
        assert.ok(result.commitLogOffset + result.wroteBytes <= segmentEnd);
      }
      const names = readdirSync(join(config.storePath, 'commitlog')).sort();
      assert.ok(names.length >= 5, `expected several segments, got ${names.length}`);
      assert.deepEqual(
        names.slice(0, 3),
        ['00000000000000000000', '00000000000000008192', '00000000000000016384'],
        'segments are named by their start offset in 20 digits',
      );
      // The first segment ends with a blank record right after its last message.
      const lastInFirst = results.filter((r) => r.commitLogOffset < 8192).at(-1);
      assert.ok(lastInFirst);
      const blankAt = lastInFirst.commitLogOffset + lastInFirst.wroteBytes;
      const fd = openSync(join(config.storePath, 'commitlog', names[0] ?? ''), 'r');
      const header = Buffer.alloc(8);
      readSync(fd, header, 0, 8, blankAt);
      closeSync(fd);
      assert.equal(header.readInt32BE(0), 8192 - blankAt);
      assert.equal(header.readInt32BE(4), BLANK_MAGIC_CODE);
      // Reading the queue returns every record, unchanged and in order.
      let queueOffset = 0;
      for (let pulls = 0; pulls < 100 && queueOffset < 60; pulls++) {
        const got = store.getMessage({ topic: 'TopicA', queueId: 0, queueOffset, maxMessages: 7, filter: all });
        for (const [j, record] of got.records.entries()) {
          const decoded = decodeRecord(record);
          assert.equal(decoded.queueOffset, got.queueOffsets[j]);
          assert.deepEqual(decoded.body, message(decoded.queueOffset).body);
        }
        queueOffset = got.nextBeginOffset;
      }
      assert.equal(queueOffset, 60);
    });
  });

  it('writes many concurrent appends with few write calls', async () => {
    await withStore({}, async (store) => {
      const results = await Promise.all(Array.from({ length: 500 }, (_, i) => store.putMessage(message(i))));
      assert.ok(results.every((r) => r.status === PutStatus.Ok));
      const stats = store.stats();
      assert.ok(stats.writeCount < 50, `expected batched writes, got ${stats.writeCount} for 500 puts`);
      assert.deepEqual(
        results.map((r) => r.queueOffset),
        Array.from({ length: 500 }, (_, i) => i),
      );
    });
  });

  it('async policy acknowledges once written and fdatasyncs within the flush interval', async () => {
    await withStore({ flushPolicy: 'async', flushIntervalMs: 20 }, async (store) => {
      const result = await store.putMessage(message(1));
      assert.equal(result.status, PutStatus.Ok);
      const end = result.commitLogOffset + result.wroteBytes;
      assert.ok(store.stats().commitLogMaxOffset >= end, 'written when acknowledged');
      await eventually(() => store.stats().commitLogFlushedOffset >= end, { timeoutMs: 3000 });
    });
  });

  it('sync policy acknowledges only after an fdatasync covers the record', async () => {
    await withStore({ flushPolicy: 'sync', flushIntervalMs: 60_000 }, async (store) => {
      for (let i = 0; i < 20; i++) {
        const result = await store.putMessage(message(i));
        assert.equal(result.status, PutStatus.Ok);
        assert.ok(store.stats().commitLogFlushedOffset >= result.commitLogOffset + result.wroteBytes);
      }
      assert.ok(store.stats().fdatasyncCount >= 1);
    });
  });

  it('group commit serves many concurrent sync puts with far fewer fdatasyncs', async () => {
    await withStore({ flushPolicy: 'sync', flushIntervalMs: 60_000 }, async (store) => {
      let next = 0;
      const total = 1280;
      async function appender(): Promise<void> {
        while (next < total) {
          const result = await store.putMessage(message(next++, { queueId: next % 4 }));
          assert.equal(result.status, PutStatus.Ok);
        }
      }
      await Promise.all(Array.from({ length: 64 }, appender));
      const stats = store.stats();
      assert.equal(stats.putCount, total);
      assert.ok(stats.fdatasyncCount * 8 < total, `${stats.fdatasyncCount} fdatasyncs for ${total} puts`);
    });
  });

  it('answers FlushDiskTimeout when the fdatasync does not finish in time, and the record stays', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slowIo: FileIo = { ...nodeFileIo, fdatasync: async (fd) => gate.then(() => nodeFileIo.fdatasync(fd)) };
    await withStore(
      { flushPolicy: 'sync', syncFlushTimeoutMs: 50, flushIntervalMs: 60_000 },
      async (store) => {
        const result = await store.putMessage(message(7));
        assert.equal(result.status, PutStatus.FlushDiskTimeout);
        assert.equal(result.error?.code, 'RB_ERR_FLUSH_TIMEOUT');
        assert.ok(store.lookMessageByOffset(result.commitLogOffset), 'the record was written');
        release();
      },
      { fileIo: slowIo },
    );
  });

  it('writes a batch contiguously with consecutive queue offsets and one message id each', async () => {
    await withStore({}, async (store) => {
      await store.putMessage(message(0));
      const batch = Array.from({ length: 10 }, (_, i) => message(i + 1));
      const result = await store.putMessages(batch);
      assert.equal(result.status, PutStatus.Ok);
      assert.equal(result.messageCount, 10);
      assert.equal(result.queueOffset, 1);
      assert.equal(result.msgIds.length, 10);
      let commitLogOffset = result.commitLogOffset;
      for (const [i, msgId] of result.msgIds.entries()) {
        const stored = store.lookMessageByOffset(commitLogOffset);
        assert.ok(stored);
        assert.equal(stored.msgId, msgId);
        assert.equal(stored.queueOffset, i + 1);
        commitLogOffset += stored.storeSize;
      }
      assert.equal(commitLogOffset, result.commitLogOffset + result.wroteBytes);
    });
  });

  it('rejects a batch that mixes queues and one that cannot fit a segment', async () => {
    await withStore({ commitLogSegmentBytes: 8192 }, async (store) => {
      const mixed = await store.putMessages([message(1), message(2, { queueId: 1 })]);
      assert.equal(mixed.status, PutStatus.MessageIllegal);
      const huge = await store.putMessages(
        Array.from({ length: 12 }, (_, i) => message(i, { body: Buffer.alloc(1000) })),
      );
      assert.equal(huge.status, PutStatus.MessageIllegal);
      assert.equal(huge.error?.code, 'RB_ERR_MESSAGE_TOO_LARGE');
      const fine = await store.putMessage(message(3));
      assert.equal(fine.status, PutStatus.Ok);
      assert.equal(fine.queueOffset, 0);
    });
  });
});
