/**
 * A broker restart in the middle of consumption: the push consumer reconnects, resumes from the
 * committed offsets and loses nothing (duplicates are allowed only for offsets not yet committed).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Producer } from '../../../src/engine/client/producer.js';
import { PushConsumer } from '../../../src/engine/client/push-consumer.js';
import { eventually } from '../../helpers/eventually.js';
import { startCluster, TRANSPORT_KINDS } from './cluster.js';

for (const kind of TRANSPORT_KINDS) {
  describe(`broker restart over ${kind} transport`, () => {
    it('loses no message when the broker restarts while a consumer is consuming', async (t) => {
      const cluster = await startCluster();
      const topic = `Restart_${kind.replace('-', '_')}`;
      const producer = new Producer({
        group: 'pg',
        nameServers: [cluster.namesrvAddress],
        sendTimeoutMs: 1000,
        ...cluster.clientTransport(kind),
      });
      const counts = new Map<string, number>();
      const consumer = new PushConsumer({
        group: `restart-${kind}`,
        nameServers: [cluster.namesrvAddress],
        consumeFromWhere: 'FIRST_OFFSET',
        rebalanceIntervalMs: 300,
        offsetPersistIntervalMs: 200,
        suspendTimeoutMs: 1000,
        pullRetryDelayMs: 100,
        heartbeatIntervalMs: 500,
        routeRefreshIntervalMs: 500,
        requestTimeoutMs: 1000,
        consumeConcurrency: 1,
        ...cluster.clientTransport(kind),
      });
      consumer.subscribe(topic, '*', async (messages) => {
        // Simulated work, so that the restart lands while the backlog is being consumed.
        await new Promise((resolve) => setTimeout(resolve, 5));
        for (const message of messages) {
          const body = message.body.toString();
          counts.set(body, (counts.get(body) ?? 0) + 1);
        }
        return 'CONSUME_SUCCESS' as const;
      });
      try {
        await producer.start();
        for (let i = 0; i < 100; i++) await producer.send({ topic, body: Buffer.from(`m-${i}`) });
        await consumer.start();
        await eventually(() => counts.size >= 50, { timeoutMs: 8000 });
        await cluster.restartBroker();
        for (let i = 100; i < 200; i++) {
          await eventually(() => producer.send({ topic, body: Buffer.from(`m-${i}`) }), { timeoutMs: 5000 });
        }
        await eventually(() => counts.size === 200, { timeoutMs: 10_000 });
        const duplicates = [...counts.values()].filter((n) => n > 1).length;
        t.diagnostic(`messages consumed more than once after the restart: ${duplicates}`);
        for (let i = 0; i < 200; i++) assert.ok((counts.get(`m-${i}`) ?? 0) >= 1, `m-${i} lost`);
      } finally {
        await consumer.shutdown();
        await producer.shutdown();
        await cluster.close();
      }
    });
  });
}
