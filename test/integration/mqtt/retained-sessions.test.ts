/**
 * State that lives in the engine: retained messages and persistent sessions, across a restart of
 * the MQTT server and of the broker; wills on an abrupt disconnect.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../../helpers/eventually.js';
import { collect, type MqttHarness, startMqttHarness } from './mqtt-harness.js';

describe('retained messages, persistent sessions and wills', () => {
  let harness: MqttHarness;
  before(async () => {
    harness = await startMqttHarness();
  });
  after(async () => {
    await harness.close();
  });

  it('gives a new subscriber the latest retained message per topic, also after a server restart, and clears on empty payload', async () => {
    const publisher = await harness.connect();
    await publisher.publishAsync('ret/a', 'first', { qos: 1, retain: true });
    await publisher.publishAsync('ret/a', 'latest', { qos: 1, retain: true });
    await publisher.publishAsync('ret/b', 'bee', { qos: 0, retain: true });
    await publisher.publishAsync('ret/c', 'gone', { qos: 1, retain: true });
    await publisher.publishAsync('ret/c', '', { qos: 1, retain: true });
    await publisher.endAsync();

    const early = await harness.connect();
    const earlyReceived = collect(early);
    await early.subscribeAsync('ret/#', { qos: 1 });
    await eventually(() => earlyReceived.length === 2, { timeoutMs: 5000 });
    await early.endAsync();

    await harness.restartServer();
    await harness.cluster.restartBroker();
    const late = await harness.connect();
    const received = collect(late);
    await late.subscribeAsync('ret/#', { qos: 1 });
    await eventually(() => received.length === 2, { timeoutMs: 10_000 });
    assert.deepEqual(received.map((m) => [m.topic, m.payload, m.retain]).sort(), [
      ['ret/a', 'latest', true],
      ['ret/b', 'bee', true],
    ]);
    await late.endAsync();
  });

  it('delivers to a persistent session, in order and once, what was published while it was away, across a full restart', async () => {
    const options = { clientId: 'persist-1', clean: false };
    const first = await harness.connect(options);
    await first.subscribeAsync('sess/#', { qos: 2 });
    await first.endAsync();

    const publisher = await harness.connect();
    for (let i = 0; i < 10; i++) await publisher.publishAsync('sess/x', `m${i}`, { qos: 2 });
    await publisher.endAsync();
    assert.equal(await harness.server.queuedMessages('persist-1'), 10);

    await harness.restartServer();
    await harness.cluster.restartBroker();

    const back = await harness.connect(options);
    assert.equal(back.options.clean, false);
    const received = collect(back);
    await eventually(() => received.length >= 10, { timeoutMs: 15_000 });
    assert.deepEqual(
      received.map((m) => m.payload),
      Array.from({ length: 10 }, (_, i) => `m${i}`),
    );
    // Once acknowledged, nothing comes again on the next reconnect.
    assert.ok(harness.server.describe().sessions.some((s) => s.clientId === 'persist-1' && s.connected));
    await eventually(async () => (await harness.server.queuedMessages('persist-1')) === 0, { timeoutMs: 5000 });
    await back.endAsync();
    const publisher2 = await harness.connect();
    await publisher2.publishAsync('sess/x', 'after', { qos: 1 });
    await publisher2.endAsync();
    const again = await harness.connect(options);
    const receivedAgain = collect(again);
    await eventually(() => receivedAgain.length >= 1, { timeoutMs: 10_000 });
    assert.deepEqual(
      receivedAgain.map((m) => m.payload),
      ['after'],
    );
    await again.endAsync();
  });

  it('keeps offline delivery for a persistent session that subscribed to the same filter twice', async () => {
    const options = { clientId: 'persist-3', clean: false };
    const first = await harness.connect(options);
    await first.subscribeAsync('twice/#', { qos: 1 });
    await first.subscribeAsync('twice/#', { qos: 1 });
    await first.endAsync();
    const publisher = await harness.connect();
    await publisher.publishAsync('twice/x', 'while away', { qos: 1 });
    await publisher.endAsync();
    const back = await harness.connect(options);
    const received = collect(back);
    await eventually(() => received.length === 1, { timeoutMs: 8000 });
    assert.equal(received[0]?.payload, 'while away');
    await back.endAsync();
  });

  it('forgets a session when the client connects with clean session on', async () => {
    const persistent = await harness.connect({ clientId: 'persist-2', clean: false });
    await persistent.subscribeAsync('forget/#', { qos: 1 });
    await persistent.endAsync();
    const clean = await harness.connect({ clientId: 'persist-2', clean: true });
    await clean.endAsync();
    await eventually(() => !harness.server.describe().sessions.some((s) => s.clientId === 'persist-2'));
    const publisher = await harness.connect();
    await publisher.publishAsync('forget/x', 'nobody', { qos: 1 });
    await publisher.endAsync();
    const back = await harness.connect({ clientId: 'persist-2', clean: false });
    const received = collect(back);
    await back.subscribeAsync('forget/y', { qos: 1 });
    assert.deepEqual(received, []);
    await back.endAsync();
  });

  it('publishes the will when a client drops without DISCONNECT, and not after a clean DISCONNECT', async () => {
    const watcher = await harness.connect();
    const received = collect(watcher);
    await watcher.subscribeAsync('will/#', { qos: 1 });
    const polite = await harness.connect({
      will: { topic: 'will/polite', payload: Buffer.from('bye'), qos: 1, retain: false },
    });
    await polite.endAsync();
    const rude = await harness.connect({
      will: { topic: 'will/rude', payload: Buffer.from('dead'), qos: 1, retain: false },
    });
    (rude as unknown as { stream: { destroy(): void } }).stream.destroy();
    await eventually(() => received.length >= 1, { timeoutMs: 8000 });
    assert.deepEqual(
      received.map((m) => [m.topic, m.payload]),
      [['will/rude', 'dead']],
    );
    await watcher.endAsync();
  });
});
