import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeRecords } from '../../../src/engine/common/message-record.js';
import type { StoredMessage } from '../../../src/engine/common/message.js';
import { ProcessorRegistry } from '../../../src/engine/remoting/channel.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { type RemotingCommand, createResponse } from '../../../src/engine/remoting/command.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';
import { eventually } from '../../helpers/eventually.js';
import {
  type BrokerHarness,
  createTopicRequest,
  pullRequest,
  remarkOf,
  sendV2Request,
  startHarness,
} from '../broker/broker-harness.js';
import { commitLogOffsetOfMsgId, endTransactionRequest, producerHeartbeat } from './semantics-requests.js';

const FAST_CHECKS = { transactionCheckIntervalMs: 150, transactionTimeoutMs: 100, transactionCheckMax: 3 };

interface HalfSent {
  queueOffset: string;
  commitLogOffset: string;
  transactionId: string | undefined;
}

async function sendHalf(h: BrokerHarness, topic: string, group: string, body: string): Promise<HalfSent> {
  const request = sendV2Request(topic, Buffer.from(body), {
    queueId: 0,
    producerGroup: group,
    properties: { TRAN_MSG: 'true', PGROUP: group, UNIQ_KEY: `uniq-${body}` },
  });
  request.extFields['f'] = '4'; // TRANSACTION_PREPARED_TYPE
  const sent = await h.call(request);
  assert.equal(sent.code, ResponseCode.Success, remarkOf(sent));
  return {
    queueOffset: sent.extFields['queueOffset'] ?? '',
    commitLogOffset: commitLogOffsetOfMsgId(sent.extFields['msgId'] ?? ''),
    transactionId: sent.extFields['transactionId'],
  };
}

async function pullAll(h: BrokerHarness, topic: string): Promise<StoredMessage[]> {
  const response = await h.call(pullRequest(topic, 0));
  return response.code === ResponseCode.Success ? decodeRecords(response.body ?? Buffer.alloc(0)) : [];
}

/** A producer connection that receives CHECK_TRANSACTION_STATE and answers with `answer` (if any). */
class CheckedProducer {
  readonly checks: RemotingCommand[] = [];
  readonly client: RemotingClient;
  answer: 0 | 8 | 12 | undefined;

  constructor(
    private readonly h: BrokerHarness,
    readonly group: string,
    answer?: 0 | 8 | 12,
  ) {
    this.answer = answer;
    const registry = new ProcessorRegistry();
    registry.register(RequestCode.CheckTransactionState, (request) => {
      this.checks.push(request);
      const outcome = this.answer;
      if (outcome !== undefined) {
        const f = request.extFields;
        const end = endTransactionRequest(
          this.group,
          f['tranStateTableOffset'] ?? '',
          f['commitLogOffset'] ?? '',
          outcome,
          true,
        );
        void this.client.invokeOneway(this.h.broker.address, end);
      }
      return createResponse(request, ResponseCode.Success);
    });
    this.client = new RemotingClient({ registry });
  }

  async register(): Promise<void> {
    const beat = await this.client.invoke(
      this.h.broker.address,
      producerHeartbeat(`client-${this.group}`, this.group),
      5000,
    );
    assert.equal(beat.code, ResponseCode.Success, remarkOf(beat));
  }
}

describe('transactional messages', () => {
  let h: BrokerHarness;
  before(async () => {
    h = await startHarness(FAST_CHECKS);
    for (const topic of ['TxCommit', 'TxRollback', 'TxCheck']) {
      const created = await h.call(createTopicRequest(topic, 1));
      assert.equal(created.code, ResponseCode.Success, remarkOf(created));
    }
  });
  after(async () => {
    await h?.close();
  });

  it('keeps a half message invisible until commit, then stores it in its real queue', async () => {
    const half = await sendHalf(h, 'TxCommit', 'pgCommit', 'commit-me');
    assert.equal(half.transactionId, 'uniq-commit-me');
    assert.deepEqual(await pullAll(h, 'TxCommit'), [], 'a half message is invisible');
    const end = await h.call(endTransactionRequest('pgCommit', half.queueOffset, half.commitLogOffset, 8));
    assert.equal(end.code, ResponseCode.Success, remarkOf(end));
    const [committed, ...rest] = await pullAll(h, 'TxCommit');
    assert.equal(rest.length, 0);
    assert.ok(committed);
    assert.equal(committed.body.toString(), 'commit-me');
    assert.equal(committed.sysFlag & 0xc, 8, 'commit transaction type');
    assert.equal(committed.preparedTransactionOffset, Number(half.commitLogOffset));
    assert.equal(committed.properties['REAL_TOPIC'], undefined);
    assert.equal(committed.properties['UNIQ_KEY'], 'uniq-commit-me');
    const twice = await h.call(endTransactionRequest('pgCommit', half.queueOffset, half.commitLogOffset, 8));
    assert.equal(twice.code, ResponseCode.SystemError, 'a resolved transaction is not committed twice');
    assert.equal((await pullAll(h, 'TxCommit')).length, 1);
  });

  it('discards a rolled-back half message and checks the producer group of the request', async () => {
    const half = await sendHalf(h, 'TxRollback', 'pgRollback', 'roll-me-back');
    const wrongGroup = await h.call(endTransactionRequest('someone-else', half.queueOffset, half.commitLogOffset, 8));
    assert.equal(wrongGroup.code, ResponseCode.SystemError);
    assert.match(remarkOf(wrongGroup), /producer group wrong/);
    const end = await h.call(endTransactionRequest('pgRollback', half.queueOffset, half.commitLogOffset, 12));
    assert.equal(end.code, ResponseCode.Success, remarkOf(end));
    const commitLate = await h.call(endTransactionRequest('pgRollback', half.queueOffset, half.commitLogOffset, 8));
    assert.equal(commitLate.code, ResponseCode.SystemError);
    assert.deepEqual(await pullAll(h, 'TxRollback'), []);
  });

  it('checks an unknown transaction back with a live producer of its group and commits on its answer', async () => {
    const producer = new CheckedProducer(h, 'pgCheck', 8);
    try {
      await producer.register();
      await sendHalf(h, 'TxCheck', 'pgCheck', 'check-me');
      const [delivered] = await eventually(
        async () => {
          const messages = await pullAll(h, 'TxCheck');
          assert.equal(messages.length, 1);
          return messages;
        },
        { timeoutMs: 5000 },
      );
      assert.equal(delivered?.body.toString(), 'check-me');
      const [check] = producer.checks;
      assert.ok(check, 'the producer was asked');
      assert.equal(check.extFields['msgId'], 'uniq-check-me');
      assert.equal(check.extFields['transactionId'], 'uniq-check-me');
      const [halfRecord] = decodeRecords(check.body ?? Buffer.alloc(0));
      assert.equal(halfRecord?.topic, 'TxCheck', 'the check carries the real topic, as RocketMQ sends it');
      assert.equal(halfRecord?.properties['REAL_TOPIC'], 'TxCheck');
      assert.equal(halfRecord?.commitLogOffset, Number(check.extFields['commitLogOffset']));
      assert.equal(halfRecord?.properties['PGROUP'], 'pgCheck');
      assert.equal(halfRecord?.properties['TRANSACTION_CHECK_TIMES'], '1');
    } finally {
      await producer.client.close();
    }
  });
});

describe('transaction checks without an answer, and restarts', () => {
  it('discards a half message after transactionCheckMax unanswered checks', async () => {
    const h = await startHarness(FAST_CHECKS);
    const producer = new CheckedProducer(h, 'pgSilent');
    try {
      await h.call(createTopicRequest('TxSilent', 1));
      await producer.register();
      await sendHalf(h, 'TxSilent', 'pgSilent', 'nobody-answers');
      await eventually(() => assert.equal(h.broker.transactions.pendingCount, 0), { timeoutMs: 5000 });
      assert.equal(producer.checks.length, 3, 'checked transactionCheckMax times');
      assert.deepEqual(await pullAll(h, 'TxSilent'), []);
    } finally {
      await producer.client.close();
      await h.close();
    }
  });

  it('rebuilds pending half messages after a restart, keeps their check count, and commits each once', async () => {
    const config = { ...FAST_CHECKS, transactionCheckMax: 15 };
    const h = await startHarness(config);
    let producer = new CheckedProducer(h, 'pgRestart');
    try {
      await h.call(createTopicRequest('TxRestart', 1));
      await producer.register();
      const half = await sendHalf(h, 'TxRestart', 'pgRestart', 'survives');
      await sendHalf(h, 'TxRestart', 'pgRestart', 'rolled-back-later');
      await eventually(() => assert.ok(producer.checks.length >= 4), { timeoutMs: 5000 });
      await producer.client.close();
      await h.restart(config);
      assert.equal(h.broker.transactions.pendingCount, 2, 'both half messages are pending again');
      // The original offsets still name the transaction after its copies were made.
      const end = await h.call(endTransactionRequest('pgRestart', half.queueOffset, half.commitLogOffset, 8));
      assert.equal(end.code, ResponseCode.Success, remarkOf(end));
      producer = new CheckedProducer(h, 'pgRestart', 12);
      await producer.register();
      await eventually(() => assert.equal(h.broker.transactions.pendingCount, 0), { timeoutMs: 5000 });
      const [lastCheck] = producer.checks.slice(-1);
      const [record] = decodeRecords(lastCheck?.body ?? Buffer.alloc(0));
      assert.ok(Number(record?.properties['TRANSACTION_CHECK_TIMES']) >= 3, 'check count continued after restart');
      await h.restart(config);
      assert.equal(h.broker.transactions.pendingCount, 0, 'resolved transactions stay resolved');
      assert.deepEqual(
        (await pullAll(h, 'TxRestart')).map((m) => m.body.toString()),
        ['survives'],
      );
    } finally {
      await producer.client.close();
      await h.close();
    }
  });
});
