/**
 * The ali-ons npm client (a RocketMQ 4.x Node client) against our NameServer and broker: 1,000
 * tagged messages sent, all consumed by one group, exactly the tagged subset by a tag-filtered group.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Producer } from '../../../src/engine/client/producer.js';
import { eventually } from '../../helpers/eventually.js';
import { startCluster } from '../client/cluster.js';
import { closeOnsDefaultProducer, Ons, onsOptions } from '../../helpers/ali-ons.js';

const TAGS = ['TagA', 'TagB', 'TagC', 'TagD', 'TagE'];

describe('ali-ons against our NameServer and broker', () => {
  it('sends 1,000 tagged messages; one group gets them all, a tag-filtered group exactly its tag', async () => {
    const cluster = await startCluster();
    const common = onsOptions(cluster.namesrvAddress);
    const producer = new Ons.Producer({ ...common, producerGroup: 'ons-producer' });
    const all = new Ons.Consumer({ ...common, consumerGroup: 'ons-all', instanceName: 'all' });
    const tagA = new Ons.Consumer({ ...common, consumerGroup: 'ons-tag-a', instanceName: 'tagA' });
    const errors: Error[] = [];
    for (const client of [producer, all, tagA]) client.on('error', (err) => errors.push(err));
    const topic = 'OnsTopic';
    const allBodies = new Set<string>();
    const tagABodies: string[] = [];
    try {
      // ali-ons does not auto-create topics: create it through our producer (TBW102) and wait for the route.
      const creator = new Producer({ group: 'creator', nameServers: [cluster.namesrvAddress] });
      await creator.start();
      await creator.send({ topic, body: Buffer.from('create'), tags: 'Create' });
      await eventually(async () => (await creator.fetchPublishQueues(topic)).length === 4, { timeoutMs: 5000 });
      await creator.shutdown();
      await producer.ready();
      const sent: { body: string; tag: string }[] = [];
      for (let i = 0; i < 1000; i++) {
        const tag = TAGS[i % TAGS.length] as string;
        const body = `ons-${i}`;
        const result = await producer.send(new Ons.Message(topic, tag, body));
        assert.equal(result.sendStatus, 'SEND_OK');
        sent.push({ body, tag });
      }
      all.subscribe(topic, '*', async (message) => {
        if (message.tags !== 'Create') allBodies.add(message.body.toString());
      });
      tagA.subscribe(topic, 'TagA', async (message) => {
        assert.equal(message.tags, 'TagA');
        tagABodies.push(message.body.toString());
      });
      await Promise.all([all.ready(), tagA.ready()]);
      await eventually(() => allBodies.size === 1000, { timeoutMs: 15_000 });
      const expectedA = sent.filter((each) => each.tag === 'TagA').map((each) => each.body);
      await eventually(() => new Set(tagABodies).size === expectedA.length, { timeoutMs: 10_000 });
      assert.deepEqual(new Set(tagABodies), new Set(expectedA));
      assert.deepEqual(allBodies, new Set(sent.map((each) => each.body)));
    } finally {
      await all.close();
      await tagA.close();
      await producer.close();
      // A consumer's start creates a process-wide producer for sending messages back; it is never
      // closed by ali-ons itself and would keep the process alive.
      await closeOnsDefaultProducer();
      await cluster.close();
    }
    // Until the broker registers a group's retry topic (created on the first heartbeat) with the
    // NameServer, ali-ons reports the missing route; that is expected at a group's first start.
    const unexpected = errors.map((err) => err.message).filter((message) => !message.includes('%RETRY%'));
    assert.deepEqual(unexpected, []);
  });
});
