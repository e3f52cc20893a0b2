import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../../helpers/eventually.js';
import { TRANSPORT_KINDS } from '../client/cluster.js';
import { collect, type MqttHarness, startMqttHarness } from './mqtt-harness.js';

for (const kind of TRANSPORT_KINDS)
  describe(`MQTT publish and subscribe through the engine (${kind} transport)`, () => {
    let harness: MqttHarness;
    before(async () => {
      harness = await startMqttHarness({}, kind);
    });
    after(async () => {
      await harness.close();
    });

    for (const qos of [0, 1, 2] as const) {
      it(`delivers a QoS ${qos} publish to a QoS ${qos} subscriber once`, async () => {
        const subscriber = await harness.connect();
        const received = collect(subscriber);
        await subscriber.subscribeAsync(`rt${qos}/a/b`, { qos });
        const publisher = await harness.connect();
        await publisher.publishAsync(`rt${qos}/a/b`, `hello ${qos}`, { qos });
        await eventually(() => received.length === 1, { timeoutMs: 8000 });
        assert.deepEqual(received[0], { topic: `rt${qos}/a/b`, payload: `hello ${qos}`, qos, retain: false });
        await publisher.publishAsync(`rt${qos}/a/b`, `again`, { qos });
        await eventually(() => received.length === 2, { timeoutMs: 5000 });
        assert.equal(received.length, 2);
        await subscriber.endAsync();
        await publisher.endAsync();
      });
    }

    it('delivers an empty payload as empty', async () => {
      const subscriber = await harness.connect();
      const received = collect(subscriber);
      await subscriber.subscribeAsync('empty/+', { qos: 1 });
      const publisher = await harness.connect();
      await publisher.publishAsync('empty/x', '', { qos: 1 });
      await eventually(() => received.length === 1, { timeoutMs: 8000 });
      assert.equal(received[0]?.payload, '');
      await subscriber.endAsync();
      await publisher.endAsync();
    });
  });
