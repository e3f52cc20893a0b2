/**
 * DefaultMessageStore reads and writes: getMessage statuses and tag filtering, index lookups, time
 * search, input validation, read-only after a write error, listeners and clean restarts.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decodeRecord } from '../../../src/engine/common/message-record.js';
import { MessageSysFlag } from '../../../src/engine/common/message.js';
import { parseTagExpression } from '../../../src/engine/common/tag-expression.js';
import {
  GetStatus,
  type MessageStoreConfig,
  PutStatus,
  testMessageStoreConfig,
} from '../../../src/engine/store/api.js';
import { FaultyFileIo } from '../../../src/engine/store/file-io.js';
import { DefaultMessageStore, type MessageStoreOptions } from '../../../src/engine/store/message-store.js';
import { eventually } from '../../helpers/eventually.js';
import { makeTempDir } from '../../helpers/temp-dir.js';
import { testMessage, withStore as withTestStore } from '../../helpers/store.js';

const message = testMessage;

function withStore(
  overrides: Partial<MessageStoreConfig>,
  body: (store: DefaultMessageStore, config: MessageStoreConfig) => Promise<void>,
  options: MessageStoreOptions = {},
): Promise<void> {
  return withTestStore('rb-store-', overrides, body, options);
}

/** Waits until the clock moves past `timestampMs` (puts then get a later store timestamp). */
async function clockPast(timestampMs: number): Promise<void> {
  await eventually(() => Date.now() > timestampMs, { timeoutMs: 1000, intervalMs: 2 });
}

const all = parseTagExpression('*');

describe('DefaultMessageStore', () => {
  it('answers every getMessage status with RocketMQ next-offset rules', async () => {
    await withStore({}, async (store) => {
      const unknown = store.getMessage({ topic: 'Nope', queueId: 0, queueOffset: 5, maxMessages: 10, filter: all });
      assert.equal(unknown.status, GetStatus.NoMatchedLogicQueue);
      assert.equal(unknown.nextBeginOffset, 0);
      for (let i = 0; i < 5; i++) assert.equal((await store.putMessage(message(i))).status, PutStatus.Ok);
      const request = { topic: 'TopicA', queueId: 0, maxMessages: 10, filter: all };
      const found = store.getMessage({ ...request, queueOffset: 1 });
      assert.equal(found.status, GetStatus.Found);
      assert.deepEqual(found.queueOffsets, [1, 2, 3, 4]);
      assert.equal(found.nextBeginOffset, 5);
      assert.equal(found.minOffset, 0);
      assert.equal(found.maxOffset, 5);
      const one = store.getMessage({ ...request, queueOffset: 5 });
      assert.equal(one.status, GetStatus.OffsetOverflowOne);
      assert.equal(one.nextBeginOffset, 5);
      const badly = store.getMessage({ ...request, queueOffset: 50 });
      assert.equal(badly.status, GetStatus.OffsetOverflowBadly);
      assert.equal(badly.nextBeginOffset, 0, 'min offset 0: start over');
      const limited = store.getMessage({ ...request, queueOffset: 0, maxMessages: 2 });
      assert.deepEqual(limited.queueOffsets, [0, 1]);
      assert.equal(limited.nextBeginOffset, 2);
      const firstSize = limited.records[0]?.length ?? 0;
      const byBytes = store.getMessage({ ...request, queueOffset: 0, maxTotalBytes: firstSize + 1 });
      assert.equal(byBytes.records.length, 1, 'maxTotalBytes stops the batch after the first record');
      const tiny = store.getMessage({ ...request, queueOffset: 0, maxTotalBytes: 1 });
      assert.equal(tiny.records.length, 1, 'at least one record is returned');
    });
  });

  it('filters by tag hash first and then by the stored tag, skipping filtered units', async () => {
    await withStore({}, async (store) => {
      const tags = ['a', 'b', 'c.x', 'c.y.z', 'a', 'b'];
      for (const [i, tag] of tags.entries()) await store.putMessage(message(i, { properties: { TAGS: tag } }));
      await store.putMessage(message(6, { properties: {} }));
      const read = (expression: string, queueOffset = 0) =>
        store.getMessage({
          topic: 'TopicA',
          queueId: 0,
          queueOffset,
          maxMessages: 32,
          filter: parseTagExpression(expression),
        });
      assert.deepEqual(read('a').queueOffsets, [0, 4]);
      assert.deepEqual(read('a || b').queueOffsets, [0, 1, 4, 5]);
      assert.deepEqual(read('c.*').queueOffsets, [2]);
      assert.deepEqual(read('c.#').queueOffsets, [2, 3]);
      assert.deepEqual(read('*').queueOffsets, [0, 1, 2, 3, 4, 5, 6]);
      const none = read('zzz');
      assert.equal(none.status, GetStatus.NoMatchedMessage);
      assert.equal(none.nextBeginOffset, 7, 'filtered units are skipped over');
      const record = read('b').records[0];
      assert.ok(record);
      assert.equal(decodeRecord(record).properties['TAGS'], 'b', 'records are returned unchanged');
    });
  });

  it('scans up to 800 units past filtered ones, however few messages are wanted', async () => {
    await withStore({}, async (store) => {
      const put = async (from: number, count: number, tag: string): Promise<void> => {
        for (let i = from; i < from + count; i++) await store.putMessage(message(i, { properties: { TAGS: tag } }));
      };
      await put(0, 700, 'skip');
      await put(700, 5, 'want');
      await put(705, 200, 'skip');
      await put(905, 3, 'want');
      const read = (queueOffset: number, maxMessages: number) =>
        store.getMessage({ topic: 'TopicA', queueId: 0, queueOffset, maxMessages, filter: parseTagExpression('want') });
      const near = read(0, 4);
      assert.deepEqual(near.queueOffsets, [700, 701, 702, 703], 'found past 700 filtered units');
      assert.equal(near.nextBeginOffset, 704);
      const rest = read(704, 32);
      assert.deepEqual(rest.queueOffsets, [704, 905, 906, 907], 'on past 200 more filtered units');
      assert.equal(rest.nextBeginOffset, 908);
      const far = read(705, 1);
      assert.deepEqual(far.queueOffsets, [905]);
      assert.equal(far.nextBeginOffset, 906);
      const none = store.getMessage({
        topic: 'TopicA',
        queueId: 0,
        queueOffset: 1,
        maxMessages: 1,
        filter: parseTagExpression('nothing'),
      });
      assert.equal(none.status, GetStatus.NoMatchedMessage);
      assert.equal(none.nextBeginOffset, 801, 'one scan stops after 800 units');
    });
  });

  it('finds messages by key and by UNIQ_KEY within a time range, newest first, in their topic only', async () => {
    await withStore({}, async (store) => {
      const first = await store.putMessage(message(1, { properties: { KEYS: 'order-1 shared', UNIQ_KEY: 'U1' } }));
      await clockPast(first.storeTimestamp);
      const second = await store.putMessage(message(2, { properties: { KEYS: 'order-2 shared', UNIQ_KEY: 'U2' } }));
      await store.putMessage(message(3, { topic: 'TopicB', properties: { KEYS: 'shared', UNIQ_KEY: 'U3' } }));
      const wide = [0, Date.now() + 1000] as const;
      assert.deepEqual(
        store.queryMessagesByKey('TopicA', 'shared', 10, ...wide).map((m) => m.queueOffset),
        [1, 0],
      );
      assert.deepEqual(
        store.queryMessagesByKey('TopicA', 'order-2', 10, ...wide).map((m) => m.msgId),
        second.msgIds,
      );
      assert.deepEqual(
        store.queryMessagesByKey('TopicA', 'U1', 10, ...wide).map((m) => m.msgId),
        first.msgIds,
      );
      assert.deepEqual(store.queryMessagesByKey('TopicA', 'U3', 10, ...wide), []);
      assert.equal(store.queryMessagesByKey('TopicB', 'shared', 10, ...wide).length, 1);
      assert.deepEqual(
        store.queryMessagesByKey('TopicA', 'shared', 10, second.storeTimestamp, Date.now() + 1000).map((m) => m.msgId),
        second.msgIds,
        'the time range excludes the older message',
      );
      assert.equal(store.queryMessagesByKey('TopicA', 'shared', 1, ...wide).length, 1, 'maxCount is honoured');
    });
  });

  it('finds queue offsets by store time and reports store timestamps', async () => {
    await withStore({}, async (store) => {
      const timestamps: number[] = [];
      for (let i = 0; i < 6; i++) {
        const result = await store.putMessage(message(i));
        timestamps.push(result.storeTimestamp);
        await clockPast(result.storeTimestamp);
      }
      for (let i = 0; i < 6; i++) {
        assert.equal(store.getMessageStoreTimestamp('TopicA', 0, i), timestamps[i]);
        assert.equal(store.getOffsetInQueueByTime('TopicA', 0, timestamps[i] ?? 0), i);
      }
      assert.equal(store.getOffsetInQueueByTime('TopicA', 0, 0), 0);
      assert.equal(store.getOffsetInQueueByTime('TopicA', 0, Date.now() + 60_000), 6, 'max offset when none');
      assert.equal(store.getMessageStoreTimestamp('TopicA', 0, 6), -1);
      assert.equal(store.getMessageStoreTimestamp('Nope', 0, 0), -1);
    });
  });

  it('returns undefined for any CommitLog offset that is not the start of a record', async () => {
    await withStore({}, async (store) => {
      const result = await store.putMessage(message(1));
      await store.putMessage(message(2));
      assert.equal(store.lookMessageByOffset(result.commitLogOffset)?.queueOffset, 0);
      for (const bad of [-1, 1, 7, 50, result.wroteBytes - 4, 1e12, Number.NaN, 2 ** 60]) {
        assert.equal(store.lookMessageByOffset(bad), undefined, `offset ${bad}`);
        assert.equal(store.selectRecord(bad), undefined, `offset ${bad}`);
      }
    });
  });

  it('rejects oversize bodies, invalid topics and queues, and oversize properties with their statuses', async () => {
    await withStore({ maxMessageBytes: 1024 }, async (store) => {
      const big = await store.putMessage(message(1, { body: Buffer.alloc(1025) }));
      assert.equal(big.status, PutStatus.MessageIllegal);
      assert.equal(big.error?.code, 'RB_ERR_MESSAGE_TOO_LARGE');
      for (const topic of ['', 'bad topic', 'a/b', 'x'.repeat(128)]) {
        const bad = await store.putMessage(message(1, { topic }));
        assert.equal(bad.status, PutStatus.MessageIllegal, `topic ${JSON.stringify(topic)}`);
        assert.equal(bad.error?.code, 'RB_ERR_TOPIC_INVALID');
      }
      const badQueue = await store.putMessage(message(1, { queueId: -1 }));
      assert.equal(badQueue.status, PutStatus.MessageIllegal);
      const props = await store.putMessage(message(1, { properties: { BIG: 'v'.repeat(40_000) } }));
      assert.equal(props.status, PutStatus.PropertiesSizeExceeded);
      assert.equal(props.error?.code, 'RB_ERR_PROPERTIES_TOO_LARGE');
      const fine = await store.putMessage(message(1, { body: Buffer.alloc(1024) }));
      assert.equal(fine.status, PutStatus.Ok);
      assert.equal(fine.queueOffset, 0, 'rejected puts take no queue offset');
    });
  });

  it('turns read-only after a failed write, keeps serving reads, and recovers on restart', async () => {
    const { dir, cleanup } = await makeTempDir('rb-store-ro-');
    try {
      const io = new FaultyFileIo();
      const config = testMessageStoreConfig(dir, { flushPolicy: 'sync' });
      const store = new DefaultMessageStore(config, { fileIo: io });
      await store.start();
      const acknowledged = [];
      for (let i = 0; i < 20; i++) acknowledged.push(await store.putMessage(message(i)));
      io.failWrites = true;
      const failed = await store.putMessage(message(20));
      assert.equal(failed.status, PutStatus.ServiceNotAvailable);
      assert.equal(failed.error?.code, 'RB_ERR_STORE_WRITE_FAILED');
      io.failWrites = false;
      const later = await store.putMessage(message(21));
      assert.equal(later.status, PutStatus.ServiceNotAvailable);
      assert.equal(later.error?.code, 'RB_ERR_STORE_READ_ONLY');
      assert.equal(store.stats().readOnly, true);
      const read = store.getMessage({ topic: 'TopicA', queueId: 0, queueOffset: 0, maxMessages: 32, filter: all });
      assert.equal(read.records.length, 20);
      await store.shutdown();
      assert.ok(existsSync(join(dir, 'abort')), 'the abort marker stays after a write error');

      const restarted = new DefaultMessageStore(config);
      await restarted.start();
      assert.equal(restarted.lastRecovery?.crashed, true);
      assert.equal(restarted.getMaxOffsetInQueue('TopicA', 0), 20);
      for (const result of acknowledged) {
        assert.deepEqual(restarted.lookMessageByOffset(result.commitLogOffset)?.body, message(result.queueOffset).body);
      }
      const resumed = await restarted.putMessage(message(22));
      assert.equal(resumed.status, PutStatus.Ok);
      assert.equal(resumed.queueOffset, 20);
      await restarted.shutdown();
    } finally {
      await cleanup();
    }
  });

  it('turns read-only when fdatasync fails under the sync policy', async () => {
    const io = new FaultyFileIo();
    await withStore(
      { flushPolicy: 'sync', flushIntervalMs: 60_000 },
      async (store) => {
        assert.equal((await store.putMessage(message(0))).status, PutStatus.Ok);
        io.failSyncs = true;
        const failed = await store.putMessage(message(1));
        assert.equal(failed.status, PutStatus.ServiceNotAvailable);
        io.failSyncs = false;
        assert.equal((await store.putMessage(message(2))).status, PutStatus.ServiceNotAvailable);
        assert.equal(store.stats().readOnly, true);
        assert.equal(
          store.getMessage({ topic: 'TopicA', queueId: 0, queueOffset: 0, maxMessages: 1, filter: all }).status,
          GetStatus.Found,
        );
      },
      { fileIo: io },
    );
  });

  it('keeps everything across a clean restart without scanning, and queue offsets continue', async () => {
    const { dir, cleanup } = await makeTempDir('rb-store-restart-');
    try {
      const config = testMessageStoreConfig(dir, { commitLogSegmentBytes: 8192 });
      const store = new DefaultMessageStore(config);
      await store.start();
      assert.ok(existsSync(join(dir, 'abort')), 'abort marker while running');
      const results = [];
      for (let i = 0; i < 80; i++) results.push(await store.putMessage(message(i, { queueId: i % 3 })));
      await store.shutdown();
      assert.equal(existsSync(join(dir, 'abort')), false, 'abort marker removed on clean shutdown');

      const restarted = new DefaultMessageStore(config);
      await restarted.start();
      try {
        const report = restarted.lastRecovery;
        assert.equal(report?.crashed, false);
        assert.equal(report?.redispatchedRecords, 0);
        assert.equal(report?.truncation, undefined);
        assert.equal(report?.verifiedFromOffset, report?.endOffset, 'nothing to verify past the checkpoint');
        for (const result of results) {
          assert.equal(restarted.lookMessageByOffset(result.commitLogOffset)?.msgId, result.msgIds[0]);
        }
        assert.deepEqual(
          restarted.queues().sort((a, b) => a.queueId - b.queueId),
          [0, 1, 2].map((queueId) => ({ topic: 'TopicA', queueId })),
        );
        const next = await restarted.putMessage(message(80, { queueId: 1 }));
        assert.equal(next.queueOffset, 27);
        assert.ok(next.commitLogOffset >= (results.at(-1)?.commitLogOffset ?? 0));
      } finally {
        await restarted.shutdown();
      }
    } finally {
      await cleanup();
    }
  });

  it('tells arrival listeners about each message once it is readable', async () => {
    await withStore({}, async (store) => {
      const arrivals: { queueOffset: number; readable: boolean }[] = [];
      store.onMessageArrived((arrival) => {
        const got = store.getMessage({
          topic: arrival.topic,
          queueId: arrival.queueId,
          queueOffset: arrival.queueOffset,
          maxMessages: 1,
          filter: all,
        });
        arrivals.push({ queueOffset: arrival.queueOffset, readable: got.status === GetStatus.Found });
      });
      await Promise.all([0, 1, 2].map((i) => store.putMessage(message(i))));
      assert.deepEqual(
        arrivals,
        [0, 1, 2].map((queueOffset) => ({ queueOffset, readable: true })),
      );
    });
  });

  it('keeps prepared transaction messages out of the queues but stores them', async () => {
    await withStore({}, async (store) => {
      const prepared = await store.putMessage(message(1, { sysFlag: MessageSysFlag.TransactionPreparedType }));
      assert.equal(prepared.status, PutStatus.Ok);
      assert.equal(prepared.queueOffset, 0);
      assert.equal(store.getMaxOffsetInQueue('TopicA', 0), 0);
      assert.ok(store.lookMessageByOffset(prepared.commitLogOffset));
      const normal = await store.putMessage(message(2));
      assert.equal(normal.queueOffset, 0);
      assert.equal(store.getMaxOffsetInQueue('TopicA', 0), 1);
    });
  });

  it('refuses puts before start and after shutdown', async () => {
    const { dir, cleanup } = await makeTempDir('rb-store-closed-');
    try {
      const store = new DefaultMessageStore(testMessageStoreConfig(dir));
      assert.equal((await store.putMessage(message(1))).status, PutStatus.ServiceNotAvailable);
      await store.start();
      await store.shutdown();
      const after = await store.putMessage(message(1));
      assert.equal(after.status, PutStatus.ServiceNotAvailable);
      assert.equal(after.error?.code, 'RB_ERR_STORE_CLOSED');
    } finally {
      await cleanup();
    }
  });
});
