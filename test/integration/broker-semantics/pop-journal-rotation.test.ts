import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ResponseCode } from '../../../src/engine/remoting/codes.js';
import {
  type BrokerHarness,
  createTopicRequest,
  remarkOf,
  sendV2Request,
  startHarness,
} from '../broker/broker-harness.js';
import { type Popped, ackRequest, popRequest, poppedOf } from './semantics-requests.js';

const MESSAGES = 60;

interface CrashImage {
  /** How many acks had been answered when the image was taken. */
  acked: number;
  /** A compaction was renaming journals at that moment. */
  midRotation: boolean;
  journal: Buffer;
  snapshot: Buffer;
}

/**
 * The pop journal is compacted on the thread pool while requests keep coming (a tiny
 * popJournalMaxBytes makes that happen every few acks). An image of the config files taken right
 * after an ack was answered is what a process crash at that moment leaves: every answered ack must
 * survive a restart on it, also when the image was taken in the middle of a compaction.
 */
describe('pop journal compaction while serving', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await startHarness({ popJournalMaxBytes: 1024 });
    const created = await h.call(createTopicRequest('RotatePop', 1));
    assert.equal(created.code, ResponseCode.Success, remarkOf(created));
  });
  after(async () => {
    await h?.close();
  });

  it('keeps every answered ack across a crash at any point of a compaction', async () => {
    for (let i = 0; i < MESSAGES; i++) {
      const sent = await h.call(sendV2Request('RotatePop', Buffer.from(`rotate-${i}`), { queueId: 0 }));
      assert.equal(sent.code, ResponseCode.Success, remarkOf(sent));
    }
    const popped: Popped[] = [];
    while (popped.length < MESSAGES) {
      const response = await h.call(popRequest('gRotate', 'RotatePop', { invisibleTimeMs: 60_000, pollTimeMs: 1000 }));
      assert.equal(response.code, ResponseCode.Success, remarkOf(response));
      popped.push(...poppedOf(response));
    }
    assert.equal(popped.length, MESSAGES);

    const configDir = join(h.dir, 'config');
    const journalPath = join(configDir, 'popState.journal');
    const snapshotPath = join(configDir, 'popState.json');
    const images: CrashImage[] = [];
    let journalShrank = false;
    let lastJournalBytes = statSync(journalPath).size;
    for (const [index, lease] of popped.entries()) {
      assert.equal((await h.call(ackRequest('gRotate', lease))).code, ResponseCode.Success);
      // Journal first: the snapshot is renamed before the journal, so this order never pairs an
      // old snapshot with a new journal, which no real crash could leave either.
      const midRotation = existsSync(`${journalPath}.next`);
      const journal = readFileSync(journalPath);
      const snapshot = readFileSync(snapshotPath);
      images.push({ acked: index + 1, midRotation, journal, snapshot });
      if (journal.length < lastJournalBytes) journalShrank = true;
      lastJournalBytes = journal.length;
    }
    assert.ok(journalShrank, 'the journal was compacted while acks were served');

    const chosen = [...images.filter((image) => image.midRotation).slice(0, 3), images[images.length - 1]];
    for (const image of chosen) {
      assert.ok(image !== undefined);
      await h.broker.shutdown();
      writeFileSync(snapshotPath, image.snapshot);
      writeFileSync(journalPath, image.journal);
      rmSync(`${journalPath}.next`, { force: true });
      await h.restart();
      const acked = popped.slice(0, image.acked);
      const open = popped.slice(image.acked);
      for (const done of acked) {
        const again = await h.call(ackRequest('gRotate', done));
        assert.equal(
          again.code,
          ResponseCode.NoMessage,
          `ack ${done.message.queueOffset} survived (image ${image.acked})`,
        );
      }
      for (const lease of open) {
        const again = await h.call(ackRequest('gRotate', lease));
        assert.equal(
          again.code,
          ResponseCode.Success,
          `lease ${lease.message.queueOffset} survived (image ${image.acked})`,
        );
      }
    }
  });

  it('writes a snapshot and an empty journal at shutdown after compactions', async () => {
    await h.broker.shutdown();
    const configDir = join(h.dir, 'config');
    const snapshot = JSON.parse(readFileSync(join(configDir, 'popState.json'), 'utf8')) as { seq: number };
    assert.ok(snapshot.seq > 0);
    assert.equal(readFileSync(join(configDir, 'popState.journal'), 'utf8'), '');
    await h.restart();
    const popped: Popped[] = poppedOf(await h.call(popRequest('gRotate', 'RotatePop')));
    assert.equal(popped.length, 0, 'nothing comes back after a clean shutdown');
  });
});
