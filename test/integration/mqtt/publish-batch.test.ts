/**
 * Publishes that arrive together are stored as engine batches (publish-batcher.ts): a burst over
 * several names of one engine topic, and over several engine topics, arrives complete, once, and
 * in publish order per name, at QoS 0 and 1; every QoS 1 publish is acknowledged. Stored batches go
 * to subscribers at once unless other producers' messages come first in the queue; with native
 * sends interleaved, every message still arrives exactly once and in order per source.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../../helpers/eventually.js';
import { Producer } from '../../../src/engine/client/index.js';
import { TRANSPORT_KINDS } from '../client/cluster.js';
import { collect, type MqttHarness, startMqttHarness } from './mqtt-harness.js';

const PER_NAME = 60;

for (const kind of TRANSPORT_KINDS)
  describe(`MQTT publish bursts stored as batches (${kind} transport)`, () => {
    let harness: MqttHarness;
    before(async () => {
      harness = await startMqttHarness({}, kind);
    });
    after(async () => {
      await harness.close();
    });

    for (const qos of [0, 1] as const) {
      it(`keeps per-name order of a QoS ${qos} burst over several names and topics`, async () => {
        const names = [`pbq${qos}/a`, `pbq${qos}/b/c`, `pbq${qos}`, `pbx${qos}/a`];
        const subscriber = await harness.connect();
        const received = collect(subscriber);
        await subscriber.subscribeAsync([...new Set(names.map((name) => name.split('/')[0] + '/#'))], { qos });
        const publisher = await harness.connect();
        // Warm-up: the topics exist and the subscriber's readers follow them.
        await Promise.all(names.map((name) => publisher.publishAsync(name, 'warm-up', { qos: 1 })));
        await eventually(() => received.length === names.length, { timeoutMs: 10_000 });
        received.length = 0;

        // One burst, names interleaved, without waiting for acknowledgements in between.
        const acknowledged: Promise<unknown>[] = [];
        for (let i = 0; i < PER_NAME; i++) {
          for (const name of names) acknowledged.push(publisher.publishAsync(name, `${name}#${i}`, { qos }));
        }
        await Promise.all(acknowledged);
        await eventually(() => received.length >= names.length * PER_NAME, { timeoutMs: 10_000 });
        await new Promise((resolve) => setTimeout(resolve, 200));
        assert.equal(received.length, names.length * PER_NAME, 'nothing lost or duplicated');
        for (const name of names) {
          const payloads = received.filter((message) => message.topic === name).map((message) => message.payload);
          assert.deepEqual(
            payloads,
            Array.from({ length: PER_NAME }, (_, i) => `${name}#${i}`),
            `${name} in publish order`,
          );
        }
        await subscriber.endAsync();
        await publisher.endAsync();
      });
    }

    it('delivers MQTT bursts interleaved with native sends to the same topic exactly once', async () => {
      const subscriber = await harness.connect();
      const received = collect(subscriber);
      await subscriber.subscribeAsync('pbmix/#', { qos: 1 });
      const publisher = await harness.connect();
      const native = new Producer({
        group: `pbmix-native-${kind}`,
        nameServers: [harness.cluster.namesrvAddress],
        ...harness.cluster.clientTransport(kind),
      });
      await native.start();
      try {
        await publisher.publishAsync('pbmix/m', 'warm-up', { qos: 1 });
        await eventually(() => received.length === 1, { timeoutMs: 10_000 });
        received.length = 0;
        const pending: Promise<unknown>[] = [];
        for (let round = 0; round < 10; round++) {
          for (let i = 0; i < 20; i++)
            pending.push(publisher.publishAsync('pbmix/m', `m#${round * 20 + i}`, { qos: 1 }));
          for (let i = 0; i < 5; i++) {
            pending.push(native.send({ topic: 'pbmix', tags: 'n', body: Buffer.from(`n#${round * 5 + i}`) }));
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
        await Promise.all(pending);
        await eventually(() => received.length >= 250, { timeoutMs: 10_000 });
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(received.length, 250, 'nothing lost or duplicated');
        const fromMqtt = received.filter((message) => message.topic === 'pbmix/m').map((message) => message.payload);
        assert.deepEqual(
          fromMqtt,
          Array.from({ length: 200 }, (_, i) => `m#${i}`),
        );
        const fromNative = received.filter((message) => message.topic === 'pbmix/n').map((message) => message.payload);
        assert.deepEqual(
          [...fromNative].sort((a, b) => Number(a.slice(2)) - Number(b.slice(2))),
          Array.from({ length: 50 }, (_, i) => `n#${i}`),
        );
      } finally {
        await native.shutdown();
        await subscriber.endAsync();
        await publisher.endAsync();
      }
    });
  });
