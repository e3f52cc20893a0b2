/**
 * Many messages through four SimpleConsumers of one group with random nacks (seeded; SEED=... replays
 * a run): in the end every message is acked exactly once and nothing is left to receive.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Producer } from '../../../src/engine/client/producer.js';
import { SimpleConsumer } from '../../../src/engine/client/simple-consumer.js';
import { seededRandom, testSeed } from '../../helpers/seed.js';
import { type SemanticsCluster, startSemanticsCluster } from './harness.js';

const MESSAGE_COUNT = 10_000;
const BATCH_SIZE = 100;
const MEMBERS = 4;
const NACK_PROBABILITY = 0.1;
const DEADLINE_MS = 25_000;

describe('pop consumers under load', () => {
  let cluster: SemanticsCluster;

  before(async () => {
    cluster = await startSemanticsCluster();
  });

  after(async () => {
    await cluster.close();
  });

  it('acks each of 10,000 messages exactly once across 4 members that nack at random', async () => {
    const seed = testSeed();
    const random = seededRandom(seed);
    const topic = 'PopMany';
    await cluster.createTopic(topic, 8);
    const producer = new Producer({ group: 'pop-many-pg', nameServers: [cluster.namesrvAddress] });
    await producer.start();
    for (let start = 0; start < MESSAGE_COUNT; start += BATCH_SIZE) {
      const batch = Array.from({ length: BATCH_SIZE }, (_, i) => ({ topic, body: Buffer.from(String(start + i)) }));
      await producer.sendBatch(batch);
    }
    await producer.shutdown();

    const acked = new Map<string, number>();
    let nacks = 0;
    const members = Array.from({ length: MEMBERS }, () => {
      const consumer = new SimpleConsumer({
        group: 'pop-many',
        nameServers: [cluster.namesrvAddress],
        consumeFromWhere: 'FIRST_OFFSET',
        invisibleTimeMs: 15_000,
        awaitDurationMs: 300,
      });
      consumer.subscribe(topic, '*');
      return consumer;
    });
    for (const member of members) await member.start();
    const deadline = Date.now() + DEADLINE_MS;
    try {
      await Promise.all(
        members.map(async (member) => {
          while (acked.size < MESSAGE_COUNT && Date.now() < deadline) {
            const messages = await member.receive(32);
            // Decide first (seeded), then settle the batch concurrently.
            const decisions = messages.map((message) => ({ message, nack: random() < NACK_PROBABILITY }));
            await Promise.all(
              decisions.map(async ({ message, nack }) => {
                if (nack) {
                  nacks++;
                  await member.nack(message);
                  return;
                }
                await member.ack(message);
                const body = message.body.toString();
                acked.set(body, (acked.get(body) ?? 0) + 1);
              }),
            );
          }
        }),
      );
      assert.equal(acked.size, MESSAGE_COUNT, `seed ${seed}: ${acked.size} distinct messages acked`);
      const twice = [...acked].filter(([, count]) => count > 1);
      assert.deepEqual(twice, [], `seed ${seed}: messages acked more than once`);
      assert.ok(nacks > 0, `seed ${seed}: some messages were nacked`);
      const leftover = await (members[0] as SimpleConsumer).receive(32);
      assert.deepEqual(
        leftover.map((m) => m.body.toString()),
        [],
        `seed ${seed}: nothing left to receive`,
      );
    } finally {
      for (const member of members) await member.shutdown();
    }
  });
});
