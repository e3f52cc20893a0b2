import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, readFileSync } from 'node:fs';
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

/**
 * A clean shutdown compacts the pop journal into its snapshot; these tests put back the files as a
 * crash would have left them (the snapshot from start plus the journal written since, with a torn
 * last line) and restart on them.
 */
describe('pop state after a crash', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await startHarness();
    const created = await h.call(createTopicRequest('CrashPop', 1));
    assert.equal(created.code, ResponseCode.Success, remarkOf(created));
  });
  after(async () => {
    await h?.close();
  });

  it('replays the journal written before a crash, ignoring a torn last line', async () => {
    for (let i = 0; i < 4; i++) {
      const sent = await h.call(sendV2Request('CrashPop', Buffer.from(`crash-${i}`), { queueId: 0 }));
      assert.equal(sent.code, ResponseCode.Success, remarkOf(sent));
    }
    const popped = await h.call(popRequest('gCrash', 'CrashPop', { invisibleTimeMs: 60_000 }));
    const leased = poppedOf(popped);
    assert.equal(leased.length, 4);
    const [a, b, c, d] = leased as [Popped, Popped, Popped, Popped];
    for (const done of [a, b]) assert.equal((await h.call(ackRequest('gCrash', done))).code, ResponseCode.Success);

    const configDir = join(h.dir, 'config');
    const saved = join(h.dir, 'saved-');
    copyFileSync(join(configDir, 'popState.json'), `${saved}popState.json`);
    copyFileSync(join(configDir, 'popState.journal'), `${saved}popState.journal`);
    assert.ok(readFileSync(`${saved}popState.journal`, 'utf8').includes('"k":"ack"'), 'acks are journaled at once');
    await h.broker.shutdown();
    copyFileSync(`${saved}popState.json`, join(configDir, 'popState.json'));
    copyFileSync(`${saved}popState.journal`, join(configDir, 'popState.journal'));
    appendFileSync(join(configDir, 'popState.journal'), '{"s":99999,"k":"ack","g":"gCrash","t":"Cra');
    await h.restart();

    for (const done of [a, b]) assert.equal((await h.call(ackRequest('gCrash', done))).code, ResponseCode.NoMessage);
    for (const open of [c, d]) assert.equal((await h.call(ackRequest('gCrash', open))).code, ResponseCode.Success);
    const again = await h.call(popRequest('gCrash', 'CrashPop'));
    assert.notEqual(again.code, ResponseCode.Success, 'nothing is leased twice after the crash');
  });
});
