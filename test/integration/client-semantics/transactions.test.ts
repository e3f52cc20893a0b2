/**
 * Transactional messages: a committed half message reaches consumers, a rolled-back one never does,
 * and one left UNKNOWN (or whose local transaction threw) is settled by the broker's check-back to the
 * producer group's check listener.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MessageExt } from '../../../src/engine/client/message-ext.js';
import { PushConsumer } from '../../../src/engine/client/push-consumer.js';
import { type LocalTransactionState, TransactionProducer } from '../../../src/engine/client/transaction-producer.js';
import { eventually } from '../../helpers/eventually.js';
import { type SemanticsCluster, startSemanticsCluster } from './harness.js';

describe('transactional messages', () => {
  let cluster: SemanticsCluster;

  before(async () => {
    cluster = await startSemanticsCluster();
  });

  after(async () => {
    await cluster.close();
  });

  it('delivers committed messages, drops rolled-back ones, and settles unknown ones through the check-back', async () => {
    const topic = 'Transactions';
    await cluster.createTopic(topic, 2);
    const checked: string[] = [];
    const verdicts: Record<string, LocalTransactionState> = {
      'unknown-commit': 'COMMIT',
      'unknown-rollback': 'ROLLBACK',
      'throws-commit': 'COMMIT',
    };
    const producer = new TransactionProducer({
      group: 'tx-pg',
      nameServers: [cluster.namesrvAddress],
      heartbeatIntervalMs: 500,
      checkListener: (message: MessageExt) => {
        const body = message.body.toString();
        checked.push(body);
        assert.equal(message.topic, topic, 'the check names the real topic');
        return verdicts[body] ?? 'UNKNOWN';
      },
    });
    await producer.start();
    const received: string[] = [];
    const consumer = new PushConsumer({
      group: 'tx-consumer',
      nameServers: [cluster.namesrvAddress],
      consumeFromWhere: 'FIRST_OFFSET',
      rebalanceIntervalMs: 300,
      suspendTimeoutMs: 1000,
      pullRetryDelayMs: 200,
    });
    consumer.subscribe(topic, '*', (messages) => {
      for (const message of messages) received.push(message.body.toString());
      return 'CONSUME_SUCCESS';
    });
    await consumer.start();
    try {
      const send = (body: string, state: LocalTransactionState | Error) =>
        producer.sendMessageInTransaction({ topic, body: Buffer.from(body) }, async () => {
          if (state instanceof Error) throw state;
          return state;
        });
      const committed = await send('commit', 'COMMIT');
      assert.equal(committed.status, 'SEND_OK');
      assert.equal(committed.localTransactionState, 'COMMIT');
      assert.equal((await send('rollback', 'ROLLBACK')).localTransactionState, 'ROLLBACK');
      await send('unknown-commit', 'UNKNOWN');
      await send('unknown-rollback', 'UNKNOWN');
      assert.equal((await send('throws-commit', new Error('local failure'))).localTransactionState, 'UNKNOWN');

      await eventually(() => received.includes('commit'), { timeoutMs: 5000 });
      await eventually(() => received.includes('unknown-commit') && received.includes('throws-commit'), {
        timeoutMs: 10_000,
      });
      assert.ok(checked.includes('unknown-commit') && checked.includes('unknown-rollback'));
      assert.ok(!checked.includes('commit') && !checked.includes('rollback'), 'settled messages are not checked');
      // Everything was settled before the check-back answers arrived; nothing else shows up.
      await eventually(() => checked.includes('unknown-rollback'), { timeoutMs: 5000 });
      assert.deepEqual([...received].sort(), ['commit', 'throws-commit', 'unknown-commit']);
    } finally {
      await consumer.shutdown();
      await producer.shutdown();
    }
  });
});
