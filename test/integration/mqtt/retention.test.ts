/**
 * Retained messages and persistent sessions live in engine topics, whose CommitLog segments
 * retention deletes after 72 h: entries are written again before that (keyed-log.ts keepFresh).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../../helpers/eventually.js';
import { collect, type MqttHarness, startMqttHarness } from './mqtt-harness.js';

describe('MQTT state and CommitLog retention', () => {
  let harness: MqttHarness;
  before(async () => {
    // Entries older than 300 ms are written again, checked every 100 ms (1 h and 24 h by default).
    harness = await startMqttHarness({ tableRefreshIntervalMs: 100, tableRefreshAfterMs: 300 });
  });
  after(async () => {
    await harness.close();
  });

  it('keeps retained messages and persistent subscriptions after retention deleted the segments they were stored in', async () => {
    const publisher = await harness.connect({ clientId: 'retention-pub' });
    await publisher.publishAsync('kept/retained', 'still here', { qos: 1, retain: true });
    const away = await harness.connect({ clientId: 'retention-session', clean: false });
    await away.subscribeAsync('kept/news', { qos: 1 });
    await away.endAsync();
    // Other traffic fills several 64 KiB segments (the test store's size).
    for (let i = 0; i < 300; i++) await publisher.publishAsync('filler/data', Buffer.alloc(1024, 1), { qos: 1 });
    // Time for the tables to write their entries again after the filler, as hours would give.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const { deletedSegments } = await harness.cluster.broker.store.runRetention(Date.now() + 10 * 24 * 3600 * 1000);
    assert.ok(deletedSegments >= 3, `retention deleted ${deletedSegments} segments`);
    await harness.restartServer();

    const fresh = await harness.connect({ clientId: 'retention-new' });
    const received = collect(fresh);
    await fresh.subscribeAsync('kept/#', { qos: 1 });
    await eventually(() => received.length === 1, { timeoutMs: 10_000 });
    assert.deepEqual(
      received.map((m) => [m.topic, m.payload, m.retain]),
      [['kept/retained', 'still here', true]],
    );
    const back = await harness.connect({ clientId: 'retention-session', clean: false });
    const news = collect(back);
    const publisherAgain = await harness.connect({ clientId: 'retention-pub-2' });
    await publisherAgain.publishAsync('kept/news', 'for the session', { qos: 1 });
    await eventually(() => news.length === 1, { timeoutMs: 10_000 });
    assert.equal(news[0]?.payload, 'for the session', 'the session kept its subscription');
    await publisher.endAsync();
  });
});
