/**
 * Recovery from a damaged CommitLog tail: flipped bytes, cut bytes and zeroed bytes in the last
 * segment after an unclean stop. Recovery must cut exactly at the damaged record, keep everything
 * before it, rebuild ConsumeQueues and the index consistently, and accept new appends.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { MessageToStore } from '../../../src/engine/common/message.js';
import { parseTagExpression } from '../../../src/engine/common/tag-expression.js';
import { type PutResult, PutStatus, testMessageStoreConfig } from '../../../src/engine/store/api.js';
import { DefaultMessageStore } from '../../../src/engine/store/message-store.js';
import { segmentFileName } from '../../../src/engine/store/segment-file.js';
import { makeTempDir } from '../../helpers/temp-dir.js';

const SEGMENT_BYTES = 16384;
const MESSAGES = 42;
/** In the last segment; ConsumeQueue units up to 31 reached their files (16 units per write). */
const DAMAGED = 30;

function message(sequence: number): MessageToStore {
  return {
    topic: 'TopicC',
    queueId: 0,
    flag: 0,
    body: Buffer.alloc(600, sequence % 251),
    properties: { TAGS: 'T', KEYS: `key-${sequence}`, UNIQ_KEY: `UNIQ-${sequence}` },
    sysFlag: 0,
    bornTimestamp: Date.now(),
    bornHost: { host: '127.0.0.1', port: 40000 },
    reconsumeTimes: 0,
    preparedTransactionOffset: 0,
  };
}

interface Damage {
  /** Changes the segment file; `at` is the damaged record's position in the file. */
  apply(path: string, at: number, size: number): void;
  /** The reason recovery should report, or undefined when the data simply ends there. */
  reason: RegExp | undefined;
}

function patch(path: string, position: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, position);
  } finally {
    closeSync(fd);
  }
}

function flipByte(path: string, position: number): void {
  const fd = openSync(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, position);
    byte[0] = (byte[0] ?? 0) ^ 0x5a;
    writeSync(fd, byte, 0, 1, position);
  } finally {
    closeSync(fd);
  }
}

async function damageAndRecover(damage: Damage): Promise<void> {
  const { dir, cleanup } = await makeTempDir('rb-corruption-');
  try {
    // A long flush interval keeps the checkpoint at the start, so recovery verifies every record.
    const config = testMessageStoreConfig(dir, {
      commitLogSegmentBytes: SEGMENT_BYTES,
      consumeQueueUnitsPerFile: 16,
      flushIntervalMs: 60_000,
    });
    const store = new DefaultMessageStore(config);
    await store.start();
    const results: PutResult[] = [];
    for (let i = 0; i < MESSAGES; i++) results.push(await store.putMessage(message(i)));
    assert.ok(results.every((r) => r.status === PutStatus.Ok));
    store.halt();

    const target = results[DAMAGED];
    assert.ok(target);
    const segmentStart = target.commitLogOffset - (target.commitLogOffset % SEGMENT_BYTES);
    assert.equal(
      segmentStart,
      (results.at(-1)?.commitLogOffset ?? 0) - ((results.at(-1)?.commitLogOffset ?? 0) % SEGMENT_BYTES),
      'the damaged record is in the last segment',
    );
    const path = join(dir, 'commitlog', segmentFileName(segmentStart));
    damage.apply(path, target.commitLogOffset - segmentStart, target.wroteBytes);

    const restarted = new DefaultMessageStore(config);
    await restarted.start();
    try {
      const report = restarted.lastRecovery;
      assert.ok(report);
      assert.equal(report.crashed, true);
      assert.equal(report.endOffset, target.commitLogOffset, 'the log ends where the damaged record started');
      if (damage.reason === undefined) {
        assert.equal(report.truncation, undefined);
      } else {
        assert.equal(report.truncation?.commitLogOffset, target.commitLogOffset);
        assert.match(report.truncation?.reason ?? '', damage.reason);
        assert.ok((report.truncation?.cutBytes ?? 0) > 0);
      }
      // Everything before the damage is intact, byte for byte, through the queue.
      const read = restarted.getMessage({
        topic: 'TopicC',
        queueId: 0,
        queueOffset: 0,
        maxMessages: 100,
        filter: parseTagExpression('*'),
      });
      assert.deepEqual(
        read.queueOffsets,
        Array.from({ length: DAMAGED }, (_, i) => i),
      );
      for (const [i, result] of results.slice(0, DAMAGED).entries()) {
        assert.deepEqual(restarted.lookMessageByOffset(result.commitLogOffset)?.body, message(i).body);
      }
      assert.equal(restarted.getMaxOffsetInQueue('TopicC', 0), DAMAGED);
      // The index agrees: keys before the damage are found, the cut ones are not.
      const wide = [0, Date.now() + 60_000] as const;
      assert.equal(restarted.queryMessagesByKey('TopicC', `key-${DAMAGED - 1}`, 5, ...wide).length, 1);
      assert.equal(restarted.queryMessagesByKey('TopicC', `UNIQ-${DAMAGED - 1}`, 5, ...wide).length, 1);
      for (const cut of [DAMAGED, DAMAGED + 1, MESSAGES - 1]) {
        assert.deepEqual(restarted.queryMessagesByKey('TopicC', `key-${cut}`, 5, ...wide), []);
      }
      // Appends continue at the cut, with the next queue offset.
      const next = await restarted.putMessage(message(DAMAGED));
      assert.equal(next.status, PutStatus.Ok);
      assert.equal(next.queueOffset, DAMAGED);
      assert.equal(next.commitLogOffset, target.commitLogOffset);
      assert.equal(restarted.queryMessagesByKey('TopicC', `key-${DAMAGED}`, 5, ...wide)[0]?.msgId, next.msgIds[0]);
    } finally {
      await restarted.shutdown();
    }
    // And the repaired store restarts cleanly.
    const again = new DefaultMessageStore(config);
    await again.start();
    assert.equal(again.lastRecovery?.crashed, false);
    assert.equal(again.getMaxOffsetInQueue('TopicC', 0), DAMAGED + 1);
    await again.shutdown();
  } finally {
    await cleanup();
  }
}

describe('recovery from a damaged tail', () => {
  it('cuts at a record whose body has a flipped byte', async () => {
    await damageAndRecover({ apply: (path, at, size) => flipByte(path, at + size - 200), reason: /CRC/ });
  });

  it('cuts at a record whose header has a flipped byte', async () => {
    await damageAndRecover({ apply: (path, at) => flipByte(path, at + 13), reason: /CRC/ });
  });

  it('cuts at a record with a broken magic code', async () => {
    await damageAndRecover({ apply: (path, at) => flipByte(path, at + 5), reason: /magic/ });
  });

  it('cuts at a record whose last bytes were cut off the file', async () => {
    await damageAndRecover({
      apply: (path, at, size) => truncateSync(path, at + size - 10),
      reason: /CRC|incomplete|separator/,
    });
  });

  it('cuts at a record zeroed from its middle to the end of the segment', async () => {
    await damageAndRecover({
      apply: (path, at, size) => patch(path, at + Math.floor(size / 2), Buffer.alloc(SEGMENT_BYTES - at - size / 2)),
      reason: /CRC|overruns|size/,
    });
  });

  it('ends the log where a zeroed tail starts', async () => {
    await damageAndRecover({
      apply: (path, at) => patch(path, at, Buffer.alloc(SEGMENT_BYTES - at)),
      reason: undefined,
    });
  });
});
