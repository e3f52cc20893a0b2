/**
 * Shared subscriptions split messages among members; MQTT over WebSocket; username/password
 * authentication from configuration.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { WebSocket } from 'ws';
import { eventually } from '../../helpers/eventually.js';
import { collect, type MqttHarness, startMqttHarness } from './mqtt-harness.js';

describe('shared subscriptions, WebSocket and authentication', () => {
  let harness: MqttHarness;
  before(async () => {
    harness = await startMqttHarness({
      wsPort: 0,
      users: [{ username: 'alice', password: 'secret' }],
      allowAnonymous: true,
    });
  });
  after(async () => {
    await harness.close();
  });

  it('splits a shared subscription among its members, each message to exactly one', async () => {
    const publisher = await harness.connect();
    await publisher.publishAsync('jobs/warm', 'create topic', { qos: 1 });
    const members = await Promise.all([harness.connect(), harness.connect(), harness.connect()]);
    const received = members.map((member) => collect(member));
    for (const member of members) await member.subscribeAsync('$share/workers/jobs/+', { qos: 1 });
    const outsider = await harness.connect();
    const outsiderReceived = collect(outsider);
    await outsider.subscribeAsync('jobs/+', { qos: 1 });
    const total = 30;
    for (let i = 0; i < total; i++) await publisher.publishAsync(`jobs/j${i % 3}`, `job-${i}`, { qos: 1 });
    await eventually(() => received.reduce((sum, list) => sum + list.length, 0) === total, { timeoutMs: 15_000 });
    const all = received.flat().map((m) => m.payload);
    assert.equal(new Set(all).size, total, 'no message went to two members');
    assert.ok(received.filter((list) => list.length > 0).length >= 2, 'more than one member got work');
    await eventually(() => outsiderReceived.length === total, { timeoutMs: 5000 });
    for (const client of [...members, outsider, publisher]) await client.endAsync();
  });

  it('round-trips a message over MQTT on WebSocket with the mqtt subprotocol', async () => {
    const url = `ws://127.0.0.1:${harness.server.wsPort ?? 0}/mqtt`;
    const client = mqtt.connect(url, { reconnectPeriod: 0, protocolVersion: 4 });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    const probe = new WebSocket(url, ['mqtt']);
    await new Promise<void>((resolve, reject) => {
      probe.once('open', () => resolve());
      probe.once('error', reject);
    });
    assert.equal(probe.protocol, 'mqtt');
    probe.terminate();
    const received = collect(client);
    await client.subscribeAsync('wsround/+', { qos: 1 });
    const tcp = await harness.connect();
    await tcp.publishAsync('wsround/x', 'over tcp', { qos: 1 });
    await client.publishAsync('wsround/y', 'over ws', { qos: 1 });
    await eventually(() => received.length === 2, { timeoutMs: 8000 });
    assert.deepEqual(received.map((m) => m.payload).sort(), ['over tcp', 'over ws']);
    await client.endAsync();
    await tcp.endAsync();
  });

  it('refuses WebSocket upgrades on other paths', async () => {
    const probe = new WebSocket(`ws://127.0.0.1:${harness.server.wsPort ?? 0}/other`, ['mqtt']);
    const failed = await new Promise<boolean>((resolve) => {
      probe.once('open', () => resolve(false));
      probe.once('error', () => resolve(true));
    });
    assert.ok(failed);
  });

  it('accepts configured credentials and refuses a wrong password with CONNACK 4', async () => {
    const good = await harness.connect({ username: 'alice', password: 'secret' });
    await good.endAsync();
    const bad = mqtt.connect(harness.url, { reconnectPeriod: 0, username: 'alice', password: 'wrong' });
    const error = await new Promise<Error & { code?: number }>((resolve) => bad.once('error', resolve));
    assert.equal(error.code, 4);
    await bad.endAsync(true);
  });

  it('refuses anonymous clients with CONNACK 5 when anonymous access is off', async () => {
    const strict = await startMqttHarness({ users: [{ username: 'u', password: 'p' }] });
    try {
      const anonymous: MqttClient = mqtt.connect(strict.url, { reconnectPeriod: 0 });
      const error = await new Promise<Error & { code?: number }>((resolve) => anonymous.once('error', resolve));
      assert.equal(error.code, 5);
      await anonymous.endAsync(true);
    } finally {
      await strict.close();
    }
  });
});
