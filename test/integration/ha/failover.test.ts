/**
 * Automatic failover in one process: a NameServer running the controller and two brokers of one group
 * in controller mode. The configured master is elected first; when it goes, the slave is promoted
 * (epoch 2) and takes writes; the old master comes back fenced, cuts the records it wrote alone, and
 * follows the new master with a byte-identical log. (The kill -9 version with separate processes is
 * cluster-failover.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testBrokerConfig } from '../../../src/engine/broker/broker-config.js';
import { Broker } from '../../../src/engine/broker/broker.js';
import { lastConsistentOffset } from '../../../src/engine/broker/ha/epoch-cache.js';
import { parseTagExpression } from '../../../src/engine/common/tag-expression.js';
import { NameServer } from '../../../src/engine/namesrv/name-server.js';
import { ProcessorRegistry } from '../../../src/engine/remoting/channel.js';
import { ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest } from '../../../src/engine/remoting/command.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';
import { eventually } from '../../helpers/eventually.js';
import { restartablePort } from '../../helpers/ports.js';
import { makeTempDir } from '../../helpers/temp-dir.js';
import { createTopicRequest, sendV2Request } from '../broker/broker-harness.js';

const TOPIC = 'FailoverTopic';
const TIMEOUT_MS = 5000;

describe('epoch histories', () => {
  it('agree up to the end of the newest shared epoch', () => {
    const old = [{ epoch: 1, startOffset: 0 }];
    const current = [
      { epoch: 1, startOffset: 0 },
      { epoch: 2, startOffset: 500 },
    ];
    assert.equal(lastConsistentOffset(old, 800, current, 900), 500, 'the old master wrote 300 bytes alone');
    assert.equal(lastConsistentOffset(old, 400, current, 900), 400, 'a slave behind keeps everything');
    assert.equal(lastConsistentOffset(current, 900, current, 900), 900);
    assert.equal(lastConsistentOffset([], 300, current, 900), 300, 'a log without history is trusted');
    assert.equal(lastConsistentOffset([{ epoch: 3, startOffset: 100 }], 300, current, 900), 0, 'nothing shared');
  });
});

describe('controller failover', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let nameServer: NameServer;
  let client: RemotingClient;
  let portA: number;
  let brokerA: Broker | undefined;
  let brokerB: Broker | undefined;

  function startBroker(name: 'a' | 'b', port: number, brokerId: number): Promise<Broker> {
    const broker = new Broker(
      testBrokerConfig(`${dir}/${name}`, {
        port,
        haPort: 0,
        brokerId,
        namesrvAddresses: [nameServer.address],
        controllerAddresses: [nameServer.address],
        brokerRole: 'ASYNC_MASTER',
      }),
    );
    return broker.start().then(() => broker);
  }

  async function send(broker: Broker, i: number): Promise<number> {
    const body = Buffer.from(`failover ${i} `.repeat(10));
    const response = await client.invoke(broker.address, sendV2Request(TOPIC, body, { queueId: i % 2 }), TIMEOUT_MS);
    return response.code;
  }

  function records(broker: Broker, queueId: number): Buffer[] {
    const request = { topic: TOPIC, queueId, queueOffset: 0, maxMessages: 1000, filter: parseTagExpression('*') };
    return broker.store.getMessage(request).records;
  }

  before(async () => {
    ({ dir, cleanup } = await makeTempDir('rb-failover-'));
    nameServer = new NameServer({
      host: '127.0.0.1',
      port: 0,
      controller: { dataDir: `${dir}/controller`, heartbeatTimeoutMs: 1000 },
    });
    await nameServer.start();
    client = new RemotingClient({ registry: new ProcessorRegistry() });
    portA = await restartablePort();
  });

  after(async () => {
    await client.close();
    await brokerB?.shutdown();
    await brokerA?.shutdown();
    await nameServer.shutdown();
    await cleanup();
  });

  it('elects the configured master even when the slave reports first', async () => {
    brokerB = await startBroker('b', 0, 1);
    brokerA = await startBroker('a', portA, 0);
    const a = brokerA;
    const b = brokerB;
    await eventually(() => a.ha.role === 'ASYNC_MASTER' && b.ha.isSlave && b.ha.slave?.connected === true, {
      timeoutMs: TIMEOUT_MS,
    });
    assert.equal(a.brokerId, 0);
    assert.equal(b.brokerId, 1);
    assert.deepEqual(a.epochs.all(), [{ epoch: 1, startOffset: 0 }]);
    const created = await client.invoke(a.address, createTopicRequest(TOPIC, 2), TIMEOUT_MS);
    assert.equal(created.code, ResponseCode.Success);
    for (let i = 0; i < 20; i++) assert.equal(await send(a, i), ResponseCode.Success);
    assert.equal(await send(b, 99), ResponseCode.ServiceNotAvailable, 'the slave takes no writes');
    await eventually(() => b.store.stats().commitLogMaxOffset === a.store.stats().commitLogMaxOffset);
    const info = await client.invoke(nameServer.address, createRequest(1004, {}), TIMEOUT_MS);
    const described = JSON.parse(info.body?.toString('utf8') ?? '{}') as { groups: Array<{ epoch: number }> };
    assert.equal(described.groups[0]?.epoch, 1);
  });

  it('promotes the slave when the master goes, and the old master rejoins as a slave without divergence', async () => {
    const a = brokerA;
    const b = brokerB;
    assert.ok(a !== undefined && b !== undefined);
    // The slave stops replicating, then the master writes 5 records no one else has.
    await b.ha.fence();
    const replicatedEnd = b.store.stats().commitLogMaxOffset;
    for (let i = 20; i < 25; i++) assert.equal(await send(a, i), ResponseCode.Success);
    assert.ok(a.store.stats().commitLogMaxOffset > replicatedEnd);
    const goneAt = Date.now();
    await a.shutdown();
    brokerA = undefined;

    await eventually(() => b.ha.role === 'ASYNC_MASTER', { timeoutMs: TIMEOUT_MS });
    const promotedMs = Date.now() - goneAt;
    assert.ok(promotedMs < 3000, `promotion took ${promotedMs} ms`);
    assert.equal(b.brokerId, 0);
    assert.deepEqual(b.epochs.all(), [
      { epoch: 1, startOffset: 0 },
      { epoch: 2, startOffset: replicatedEnd },
    ]);
    for (let i = 100; i < 110; i++) assert.equal(await send(b, i), ResponseCode.Success);

    const rejoined = await startBroker('a', portA, 0);
    brokerA = rejoined;
    await eventually(
      () =>
        rejoined.ha.isSlave &&
        rejoined.brokerId === 1 &&
        rejoined.store.stats().commitLogMaxOffset === b.store.stats().commitLogMaxOffset,
      { timeoutMs: TIMEOUT_MS },
    );
    assert.equal(rejoined.ha.role, 'SLAVE');
    assert.deepEqual(rejoined.epochs.all(), b.epochs.all());
    for (const queueId of [0, 1]) assert.deepEqual(records(rejoined, queueId), records(b, queueId));
    assert.equal(records(b, 0).length + records(b, 1).length, 30, 'the 5 records only the old master had are gone');
    assert.equal(await send(rejoined, 200), ResponseCode.ServiceNotAvailable);
  });
});
