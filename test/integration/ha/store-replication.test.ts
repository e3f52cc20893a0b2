/**
 * The store's replication seam without sockets: a master store's raw CommitLog bytes, read with
 * readCommitLog in chunks of every size, appended to a replica store with appendReplicated.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTagExpression } from '../../../src/engine/common/tag-expression.js';
import { GetStatus, PutStatus, testMessageStoreConfig } from '../../../src/engine/store/api.js';
import { DefaultMessageStore } from '../../../src/engine/store/message-store.js';
import { testMessage } from '../../helpers/store.js';
import { makeTempDir } from '../../helpers/temp-dir.js';

const SEGMENT_BYTES = 4096;

async function openStore(dir: string): Promise<DefaultMessageStore> {
  const store = new DefaultMessageStore(testMessageStoreConfig(dir, { commitLogSegmentBytes: SEGMENT_BYTES }));
  await store.start();
  return store;
}

/** Copies the master's log to the replica in chunks of `chunkBytes`; returns the chunks sent. */
function copyLog(
  master: DefaultMessageStore,
  replica: DefaultMessageStore,
  fromOffset: number,
  chunkBytes: number,
): number {
  let offset = fromOffset;
  let chunks = 0;
  for (let i = 0; i < 100_000; i++) {
    const data = master.readCommitLog(offset, chunkBytes);
    assert.ok(data !== undefined, `readCommitLog(${offset}) gave undefined`);
    if (data.length === 0) return chunks;
    const result = replica.appendReplicated(offset, data);
    assert.ok(result.ok, result.ok ? '' : result.reason);
    offset += data.length;
    chunks++;
  }
  throw new Error('copy did not finish');
}

describe('store replication', () => {
  it('rebuilds byte-identical records and pullable queues from chunks of any size, across segment rolls', async () => {
    const { dir, cleanup } = await makeTempDir('rb-store-repl-');
    const master = await openStore(`${dir}/master`);
    const replicas: DefaultMessageStore[] = [];
    try {
      for (let i = 0; i < 60; i++) {
        const put = await master.putMessage(testMessage(i, { queueId: i % 2 }));
        assert.equal(put.status, PutStatus.Ok);
      }
      const masterMax = master.stats().commitLogMaxOffset;
      assert.ok(masterMax > 2 * SEGMENT_BYTES, 'the test needs segment rolls');
      for (const chunkBytes of [1, 7, 100, 4096, 1 << 20]) {
        const replica = await openStore(`${dir}/replica-${chunkBytes}`);
        replicas.push(replica);
        replica.setReplica(true);
        copyLog(master, replica, 0, chunkBytes);
        assert.equal(replica.stats().commitLogMaxOffset, masterMax);
        for (const queueId of [0, 1]) {
          const filter = parseTagExpression('*');
          const request = { topic: 'TopicA', queueId, queueOffset: 0, maxMessages: 100, filter };
          const fromMaster = master.getMessage(request);
          const fromReplica = replica.getMessage(request);
          assert.equal(fromReplica.status, GetStatus.Found);
          assert.equal(fromReplica.records.length, 30);
          assert.deepEqual(fromReplica.records, fromMaster.records);
        }
      }
    } finally {
      for (const replica of replicas) await replica.shutdown();
      await master.shutdown();
      await cleanup();
    }
  });

  it('refuses puts as a replica and rejects a corrupt record, a wrong offset and a stream on a master', async () => {
    const { dir, cleanup } = await makeTempDir('rb-store-repl-');
    const master = await openStore(`${dir}/master`);
    const replica = await openStore(`${dir}/replica`);
    try {
      await master.putMessage(testMessage(1));
      await master.putMessage(testMessage(2));
      const data = master.readCommitLog(0, 1 << 20);
      assert.ok(data !== undefined && data.length > 0);
      assert.equal(replica.appendReplicated(0, data).ok, false, 'a store that is not a replica refuses');
      replica.setReplica(true);
      const put = await replica.putMessage(testMessage(3));
      assert.equal(put.status, PutStatus.ServiceNotAvailable);

      const wrongOffset = replica.appendReplicated(5, data);
      assert.ok(!wrongOffset.ok && /expected 0/.test(wrongOffset.reason));

      const damaged = Buffer.from(data);
      const secondRecordAt = damaged.readInt32BE(0);
      const flipAt = secondRecordAt + damaged.readInt32BE(secondRecordAt) - 40;
      damaged.writeUInt8(damaged.readUInt8(flipAt) ^ 0xff, flipAt);
      const corrupt = replica.appendReplicated(0, damaged);
      assert.ok(!corrupt.ok && /corrupt record/.test(corrupt.reason), JSON.stringify(corrupt));
      // The first record was valid and stays; the stream restarts at the log's end.
      assert.equal(replica.stats().commitLogMaxOffset, secondRecordAt);
      const rest = replica.appendReplicated(secondRecordAt, data.subarray(secondRecordAt));
      assert.ok(rest.ok);
      assert.equal(replica.stats().commitLogMaxOffset, data.length);
      assert.equal(replica.getMaxOffsetInQueue('TopicA', 0), 2);
    } finally {
      await replica.shutdown();
      await master.shutdown();
      await cleanup();
    }
  });

  it('keeps replicated records and queue offsets across a replica restart', async () => {
    const { dir, cleanup } = await makeTempDir('rb-store-repl-');
    const master = await openStore(`${dir}/master`);
    let replica = await openStore(`${dir}/replica`);
    try {
      for (let i = 0; i < 30; i++) await master.putMessage(testMessage(i));
      replica.setReplica(true);
      copyLog(master, replica, 0, 3000);
      await replica.shutdown();
      replica = await openStore(`${dir}/replica`);
      replica.setReplica(true);
      const resumeAt = replica.stats().commitLogMaxOffset;
      assert.equal(resumeAt, master.stats().commitLogMaxOffset);
      for (let i = 30; i < 40; i++) await master.putMessage(testMessage(i));
      copyLog(master, replica, resumeAt, 3000);
      assert.equal(replica.getMaxOffsetInQueue('TopicA', 0), 40);
      replica.setReplica(false);
      const put = await replica.putMessage(testMessage(40));
      assert.equal(put.status, PutStatus.Ok);
      assert.equal(put.queueOffset, 40, 'a promoted replica continues the queue offsets');
    } finally {
      await replica.shutdown();
      await master.shutdown();
      await cleanup();
    }
  });

  it('truncates a replica whose log ran past its new master, keeps the cut across a restart, and resumes', async () => {
    const { dir, cleanup } = await makeTempDir('rb-store-repl-');
    // The old master wrote 50 records; the new master (its former replica) had only the first 30.
    const oldMaster = await openStore(`${dir}/old-master`);
    const newMaster = await openStore(`${dir}/new-master`);
    try {
      let cutOffset = 0;
      for (let i = 0; i < 50; i++) {
        const put = await oldMaster.putMessage(testMessage(i, { queueId: i % 2 }));
        if (i === 30) cutOffset = put.commitLogOffset;
      }
      newMaster.setReplica(true);
      copyLog(oldMaster, newMaster, 0, 1 << 20);
      await newMaster.truncateReplica(cutOffset);
      newMaster.setReplica(false);
      for (let i = 100; i < 110; i++) await newMaster.putMessage(testMessage(i, { queueId: i % 2 }));

      oldMaster.setReplica(true);
      await oldMaster.truncateReplica(cutOffset);
      assert.equal(oldMaster.stats().commitLogMaxOffset, cutOffset);
      assert.equal(oldMaster.getMaxOffsetInQueue('TopicA', 0), 15);
      await assert.rejects(oldMaster.truncateReplica(-1), /before its start/);
      await oldMaster.shutdown();
      const reopened = await openStore(`${dir}/old-master`);
      try {
        assert.equal(reopened.stats().commitLogMaxOffset, cutOffset, 'the cut survives a restart');
        reopened.setReplica(true);
        copyLog(newMaster, reopened, cutOffset, 777);
        assert.equal(reopened.stats().commitLogMaxOffset, newMaster.stats().commitLogMaxOffset);
        for (const queueId of [0, 1]) {
          const request = {
            topic: 'TopicA',
            queueId,
            queueOffset: 0,
            maxMessages: 100,
            filter: parseTagExpression('*'),
          };
          assert.deepEqual(reopened.getMessage(request).records, newMaster.getMessage(request).records);
        }
      } finally {
        await reopened.shutdown();
      }
    } finally {
      await newMaster.shutdown();
      await cleanup();
    }
  });

  it('restarts an empty replica at a segment boundary of a master whose log no longer starts at 0', async () => {
    const { dir, cleanup } = await makeTempDir('rb-store-repl-');
    const master = await openStore(`${dir}/master`);
    const replica = await openStore(`${dir}/replica`);
    try {
      for (let i = 0; i < 60; i++) await master.putMessage(testMessage(i));
      const startOffset = 2 * SEGMENT_BYTES;
      assert.ok(master.stats().commitLogMaxOffset > startOffset + SEGMENT_BYTES);
      await assert.rejects(replica.resetReplica(startOffset), /not a replica/);
      replica.setReplica(true);
      await assert.rejects(replica.resetReplica(startOffset + 1), /segment size/);
      await replica.resetReplica(startOffset);
      assert.equal(replica.stats().commitLogMinOffset, startOffset);
      copyLog(master, replica, startOffset, 1000);
      assert.equal(replica.stats().commitLogMaxOffset, master.stats().commitLogMaxOffset);
      const last = master.getMaxOffsetInQueue('TopicA', 0) - 1;
      const request = {
        topic: 'TopicA',
        queueId: 0,
        queueOffset: last,
        maxMessages: 1,
        filter: parseTagExpression('*'),
      };
      assert.deepEqual(replica.getMessage(request).records, master.getMessage(request).records);
      assert.equal(replica.getMaxOffsetInQueue('TopicA', 0), last + 1, "queue offsets continue the master's");
    } finally {
      await replica.shutdown();
      await master.shutdown();
      await cleanup();
    }
  });
});
