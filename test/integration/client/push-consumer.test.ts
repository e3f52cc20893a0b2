/**
 * Push consumers in groups against a real NameServer and broker, over both transports: clustering
 * members split the queues and take over from a member that leaves; broadcasting members each get
 * everything; where a new group starts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Producer } from '../../../src/engine/client/producer.js';
import { PushConsumer, type PushConsumerOptions } from '../../../src/engine/client/push-consumer.js';
import { queueKey } from '../../../src/engine/client/route.js';
import { eventually } from '../../helpers/eventually.js';
import { makeTempDir } from '../../helpers/temp-dir.js';
import { startCluster, type TestCluster, TRANSPORT_KINDS } from './cluster.js';

const FAST: Partial<PushConsumerOptions> = {
  rebalanceIntervalMs: 300,
  offsetPersistIntervalMs: 200,
  suspendTimeoutMs: 2000,
  pullRetryDelayMs: 200,
  heartbeatIntervalMs: 1000,
  routeRefreshIntervalMs: 1000,
};

for (const kind of TRANSPORT_KINDS) {
  describe(`push consumers over ${kind} transport`, () => {
    let cluster: TestCluster;
    let producer: Producer;
    const suffix = kind.replace('-', '_');

    before(async () => {
      cluster = await startCluster({
        messageDelayLevel: '100ms 200ms 300ms 400ms 500ms 600ms 700ms 800ms 900ms 1s 1s 1s 1s 1s 1s 1s 1s 1s',
      });
      producer = new Producer({ group: 'pg', nameServers: [cluster.namesrvAddress], ...cluster.clientTransport(kind) });
      await producer.start();
    });

    after(async () => {
      await producer.shutdown();
      await cluster.close();
    });

    function consumer(group: string, options: Partial<PushConsumerOptions> = {}): PushConsumer {
      return new PushConsumer({
        group,
        nameServers: [cluster.namesrvAddress],
        consumeFromWhere: 'FIRST_OFFSET',
        ...FAST,
        ...options,
        ...cluster.clientTransport(kind),
      });
    }

    async function sendMany(topic: string, prefix: string, count: number): Promise<void> {
      await Promise.all(
        Array.from({ length: count }, (_, i) => producer.send({ topic, body: Buffer.from(`${prefix}-${i}`) })),
      );
    }

    it('splits the queues among three clustering members, each message consumed once, and rebalances when one leaves', async () => {
      const topic = `Cluster_${suffix}`;
      await producer.send({ topic, body: Buffer.from('create') });
      const seen = new Map<string, string[]>();
      const members = ['a', 'b', 'c'].map((name) => {
        const member = consumer(`cluster-${suffix}`);
        member.subscribe(topic, '*', (messages) => {
          for (const message of messages) {
            const body = message.body.toString();
            seen.set(body, [...(seen.get(body) ?? []), name]);
          }
          return 'CONSUME_SUCCESS';
        });
        return member;
      });
      for (const member of members) await member.start();
      const split = (active: PushConsumer[]): boolean => {
        const owned = active.flatMap((member) =>
          member
            .assignedQueues()
            .filter((q) => q.topic === topic)
            .map(queueKey),
        );
        return owned.length === 4 && new Set(owned).size === 4 && active.every((m) => m.assignedQueues().length > 0);
      };
      await eventually(() => split(members) && seen.has('create'), { timeoutMs: 8000 });
      await sendMany(topic, 'one', 300);
      await eventually(() => [...seen.keys()].filter((body) => body.startsWith('one-')).length === 300, {
        timeoutMs: 8000,
      });
      const phaseOne = [...seen.entries()].filter(([body]) => body.startsWith('one-'));
      assert.deepEqual(
        phaseOne.filter(([, who]) => who.length !== 1),
        [],
        'every message consumed exactly once',
      );
      assert.equal(new Set(phaseOne.map(([, who]) => who[0])).size, 3, 'all three members consumed');

      await members[2]?.shutdown();
      const rest = members.slice(0, 2);
      await eventually(() => split(rest), { timeoutMs: 8000 });
      await sendMany(topic, 'two', 200);
      await eventually(() => [...seen.keys()].filter((body) => body.startsWith('two-')).length === 200, {
        timeoutMs: 8000,
      });
      const phaseTwo = [...seen.entries()].filter(([body]) => body.startsWith('two-'));
      assert.ok(phaseTwo.every(([, who]) => who.length === 1 && who[0] !== 'c'));
      for (const member of rest) await member.shutdown();
    });

    it('gives every broadcasting member every message and keeps offsets in local files', async () => {
      const topic = `Broadcast_${suffix}`;
      await producer.send({ topic, body: Buffer.from('create') });
      const dirs = await Promise.all([makeTempDir(), makeTempDir()]);
      const received = [new Set<string>(), new Set<string>()];
      const members = dirs.map(({ dir }, i) => {
        const member = consumer(`broadcast-${suffix}`, { messageModel: 'BROADCASTING', offsetStoreDir: dir });
        member.subscribe(topic, '*', (messages) => {
          for (const message of messages) received[i]?.add(message.body.toString());
          return 'CONSUME_SUCCESS';
        });
        return member;
      });
      try {
        for (const member of members) await member.start();
        await eventually(() => members.every((m) => m.assignedQueues().length === 4), { timeoutMs: 8000 });
        await sendMany(topic, 'b', 100);
        await eventually(() => received.every((set) => set.size === 101), { timeoutMs: 8000 });
      } finally {
        for (const member of members) await member.shutdown();
        for (const { cleanup } of dirs) await cleanup();
      }
    });

    it('starts a new group at the first offset when asked, and resumes a known group at its committed offset', async () => {
      const topic = `From_${suffix}`;
      await sendMany(topic, 'old', 20);
      const group = `from-${suffix}`;
      const first = new Set<string>();
      const c1 = consumer(group, { consumeFromWhere: 'FIRST_OFFSET' });
      c1.subscribe(topic, '*', (messages) => {
        for (const message of messages) first.add(message.body.toString());
        return 'CONSUME_SUCCESS';
      });
      await c1.start();
      await eventually(() => first.size === 20, { timeoutMs: 8000 });
      await c1.shutdown();
      await sendMany(topic, 'new', 10);
      // The group has committed offsets now: LAST_OFFSET does not apply, it resumes where c1 stopped.
      const second = new Set<string>();
      const c2 = consumer(group, { consumeFromWhere: 'LAST_OFFSET' });
      c2.subscribe(topic, '*', (messages) => {
        for (const message of messages) second.add(message.body.toString());
        return 'CONSUME_SUCCESS';
      });
      await c2.start();
      try {
        await eventually(() => second.size === 10, { timeoutMs: 8000 });
        assert.ok([...second].every((body) => body.startsWith('new-')));
      } finally {
        await c2.shutdown();
      }
    });

    it('redelivers a message whose handler answers RECONSUME_LATER', { timeout: 25_000 }, async () => {
      const topic = `Retry_${suffix}`;
      await producer.send({ topic, body: Buffer.from('create') });
      const attempts: number[] = [];
      const c = consumer(`retry-${suffix}`, { localRetryDelayMs: 200 });
      c.subscribe(topic, '*', (messages) => {
        const message = messages[0];
        if (message?.body.toString() !== 'retry-me') return 'CONSUME_SUCCESS';
        attempts.push(message.reconsumeTimes);
        return attempts.length === 1 ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS';
      });
      await c.start();
      try {
        await producer.send({ topic, body: Buffer.from('retry-me') });
        await eventually(() => attempts.length >= 2, { timeoutMs: 20_000 });
        assert.equal(attempts[0], 0);
        assert.ok((attempts[1] ?? 0) >= 1, `second attempt has reconsumeTimes ${attempts[1]}`);
      } finally {
        await c.shutdown();
      }
    });
  });
}
