/**
 * Retention: whole CommitLog segments deleted by age and by disk usage, oldest first, never the
 * segment being written, with ConsumeQueue minimum offsets corrected.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { MessageToStore } from '../../../src/engine/common/message.js';
import { parseTagExpression } from '../../../src/engine/common/tag-expression.js';
import { GetStatus, type MessageStoreConfig, PutStatus } from '../../../src/engine/store/api.js';
import { DefaultMessageStore, type MessageStoreOptions } from '../../../src/engine/store/message-store.js';
import { eventually } from '../../helpers/eventually.js';
import { withStore as withTestStore } from '../../helpers/store.js';

const SEGMENT_BYTES = 8192;

function message(sequence: number, queueId = 0): MessageToStore {
  return {
    topic: 'TopicR',
    queueId,
    flag: 0,
    body: Buffer.alloc(900, sequence % 251),
    properties: { TAGS: 'T', KEYS: `key-${sequence}` },
    sysFlag: 0,
    bornTimestamp: Date.now(),
    bornHost: { host: '127.0.0.1', port: 40000 },
    reconsumeTimes: 0,
    preparedTransactionOffset: 0,
  };
}

function withStore(
  overrides: Partial<MessageStoreConfig>,
  body: (store: DefaultMessageStore, config: MessageStoreConfig) => Promise<void>,
  options: MessageStoreOptions = {},
): Promise<void> {
  return withTestStore(
    'rb-retention-',
    { commitLogSegmentBytes: SEGMENT_BYTES, consumeQueueUnitsPerFile: 4, ...overrides },
    body,
    options,
  );
}

/** Appends to two queues until the log spans `segments` segments. */
async function fill(store: DefaultMessageStore, segments: number): Promise<void> {
  for (let i = 0; i < 1000 && store.stats().commitLogMaxOffset < (segments - 1) * SEGMENT_BYTES + 100; i++) {
    assert.equal((await store.putMessage(message(i, i % 2))).status, PutStatus.Ok);
  }
  // One more message per queue, in the active segment.
  for (const queueId of [0, 1]) assert.equal((await store.putMessage(message(5000, queueId))).status, PutStatus.Ok);
}

function segmentNames(config: MessageStoreConfig): string[] {
  return readdirSync(join(config.storePath, 'commitlog')).sort();
}

const all = parseTagExpression('*');

describe('retention', () => {
  it('deletes segments older than fileReservedMs, never the active one, and corrects queue min offsets', async () => {
    await withStore({ fileReservedMs: 60_000 }, async (store, config) => {
      await fill(store, 5);
      const before = segmentNames(config);
      assert.equal(before.length, 5);
      assert.deepEqual(await store.runRetention(Date.now()), { deletedSegments: 0 }, 'nothing is old yet');
      const result = await store.runRetention(Date.now() + 120_000);
      assert.equal(result.deletedSegments, 4);
      assert.deepEqual(segmentNames(config), before.slice(4), 'only the active segment is left');
      const minOffset = store.stats().commitLogMinOffset;
      assert.equal(minOffset, 4 * SEGMENT_BYTES);
      for (const queueId of [0, 1]) {
        const min = store.getMinOffsetInQueue('TopicR', queueId);
        const got = store.getMessage({ topic: 'TopicR', queueId, queueOffset: min, maxMessages: 1, filter: all });
        assert.equal(got.status, GetStatus.Found, `queue ${queueId} min offset ${min} is readable`);
        const record = store.lookMessageByOffset(store.stats().commitLogMinOffset);
        assert.ok(record === undefined || record.commitLogOffset >= minOffset);
        const tooSmall = store.getMessage({ topic: 'TopicR', queueId, queueOffset: 0, maxMessages: 1, filter: all });
        assert.equal(tooSmall.status, GetStatus.OffsetTooSmall);
        assert.equal(tooSmall.nextBeginOffset, min);
      }
      assert.equal(store.lookMessageByOffset(0), undefined, 'deleted bytes are gone');
      assert.equal((await store.putMessage(message(9999))).status, PutStatus.Ok, 'appends go on');
    });
  });

  it('deletes the oldest segments while disk usage is above diskMaxUsedRatio', async () => {
    let usage = 0.9;
    await withStore(
      { fileReservedMs: 3_600_000, diskMaxUsedRatio: 0.75 },
      async (store, config) => {
        await fill(store, 6);
        const before = segmentNames(config);
        assert.equal(before.length, 6);
        // Each deletion frees "10%": two deletions bring 0.9 below 0.75.
        const result = await store.runRetention();
        assert.equal(result.deletedSegments, 2);
        assert.deepEqual(segmentNames(config), before.slice(2));
        assert.equal(store.stats().commitLogMinOffset, 2 * SEGMENT_BYTES);
        usage = 0.99;
        assert.equal((await store.runRetention()).deletedSegments, 3, 'all but the active segment');
        assert.deepEqual(segmentNames(config), before.slice(5));
      },
      {
        diskUsage: () => {
          const current = usage;
          usage -= 0.1;
          return current;
        },
      },
    );
  });

  it('runs on its timer when retentionCheckIntervalMs is set', async () => {
    await withStore({ fileReservedMs: 0, retentionCheckIntervalMs: 20 }, async (store, config) => {
      await fill(store, 3);
      await eventually(() => segmentNames(config).length === 1, { timeoutMs: 5000 });
      assert.equal(store.stats().commitLogMinOffset, 2 * SEGMENT_BYTES);
    });
  });
});
