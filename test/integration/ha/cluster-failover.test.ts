/**
 * The cluster as users run it, every node its own process on loopback: 2 NameServers (the first also
 * the failover controller) and 2 broker groups of a master and a slave under sync replication. While a
 * producer sends and a push consumer consumes, the master of broker-a is killed with SIGKILL:
 *   - no message acknowledged SEND_OK is missing from what the consumer received;
 *   - the slave keeps serving reads and is promoted; sends to broker-a resume (time reported);
 *   - the old master restarts, rejoins as a slave and ends with a log identical to the new master's;
 *   - a NameServer killed with SIGKILL does not stop producer or consumer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Producer, PushConsumer } from '../../../src/engine/client/index.js';
import { decodePulledMessages } from '../../../src/engine/client/message-ext.js';
import { ProcessorRegistry } from '../../../src/engine/remoting/channel.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest } from '../../../src/engine/remoting/command.js';
import { RemotingClient } from '../../../src/engine/remoting/tcp-client.js';
import { type CliProcess, startCli } from '../../helpers/cli-process.js';
import { eventually } from '../../helpers/eventually.js';
import { restartablePort } from '../../helpers/ports.js';
import { makeTempDir } from '../../helpers/temp-dir.js';
import { createTopicRequest, pullRequest } from '../broker/broker-harness.js';

const TOPIC = 'ClusterFailover';
const GROUP = 'cluster-failover-consumers';
const TIMEOUT_MS = 5000;
/** Upper bound of the producer loop, whatever happens. */
const MAX_SENDS = 50_000;

interface BrokerNode {
  name: string;
  id: number;
  port: number;
  haPort: number;
  dir: string;
  process: CliProcess | undefined;
}

describe('cluster failover with separate processes', { timeout: 180_000 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const nameServers: { port: number; process: CliProcess | undefined }[] = [];
  const brokers: BrokerNode[] = [];
  let client: RemotingClient;
  let producer: Producer;
  let consumer: PushConsumer;
  const acked = new Map<string, string>();
  const received = new Set<string>();
  const sendLog: { atMs: number; broker: string; status: string }[] = [];
  let sending: Promise<void> | undefined;
  let stopSending = false;

  const address = (port: number): string => `127.0.0.1:${port}`;
  const namesrvList = (): string => nameServers.map((ns) => address(ns.port)).join(';');

  async function startBroker(node: BrokerNode): Promise<void> {
    node.process = await startCli(
      [
        'broker',
        '--host',
        '127.0.0.1',
        '--port',
        String(node.port),
        '--ha-port',
        String(node.haPort),
        '--broker-name',
        node.name,
        '--broker-id',
        String(node.id),
        '--data',
        node.dir,
        '--role',
        'SYNC_MASTER',
        '--namesrv',
        namesrvList(),
        '--controller',
        address(nameServers[0]?.port ?? 0),
        '--controller-heartbeat-ms',
        '200',
      ],
      /listening on/,
    );
  }

  async function runtimeInfo(node: BrokerNode): Promise<Record<string, string>> {
    const response = await client.invoke(
      address(node.port),
      createRequest(RequestCode.GetBrokerRuntimeInfo, {}),
      TIMEOUT_MS,
    );
    const parsed = JSON.parse(response.body?.toString('utf8') ?? '{}') as { table?: Record<string, string> };
    return parsed.table ?? {};
  }

  async function replicaInfo(): Promise<{
    groups: {
      brokerName: string;
      epoch: number;
      masterAddr: string;
      members: { brokerAddr: string; alive: boolean }[];
    }[];
  }> {
    const response = await client.invoke(address(nameServers[0]?.port ?? 0), createRequest(1004, {}), TIMEOUT_MS);
    return JSON.parse(response.body?.toString('utf8') ?? '{}') as Awaited<ReturnType<typeof replicaInfo>>;
  }

  /** Bodies of every message in `queueId` of the topic, read from one broker. */
  async function bodiesOn(node: BrokerNode, queueId: number): Promise<string[]> {
    const bodies: string[] = [];
    let offset = 0;
    for (let round = 0; round < 1000; round++) {
      const response = await client.invoke(
        address(node.port),
        pullRequest(TOPIC, queueId, { queueOffset: offset, maxMsgNums: 32, group: 'verify' }),
        TIMEOUT_MS,
      );
      if (response.code !== ResponseCode.Success || response.body === undefined) break;
      const messages = decodePulledMessages(response.body, node.name);
      for (const message of messages) bodies.push(message.body.toString('utf8'));
      offset = Number(response.extFields['nextBeginOffset']);
    }
    return bodies;
  }

  function sendLoop(): Promise<void> {
    return (async () => {
      for (let i = 0; i < MAX_SENDS && !stopSending; i++) {
        const body = `m-${i}`;
        try {
          const result = await producer.send({ topic: TOPIC, body: Buffer.from(body) });
          sendLog.push({ atMs: Date.now(), broker: result.messageQueue.brokerName, status: result.status });
          if (result.status === 'SEND_OK') acked.set(body, result.messageQueue.brokerName);
        } catch (err) {
          sendLog.push({ atMs: Date.now(), broker: '', status: `error: ${(err as Error).message}` });
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
  }

  function firstSince(sinceMs: number, accept: (entry: (typeof sendLog)[number]) => boolean): number | undefined {
    return sendLog.find((entry) => entry.atMs >= sinceMs && accept(entry))?.atMs;
  }

  before(async () => {
    ({ dir, cleanup } = await makeTempDir('rb-cluster-failover-'));
    client = new RemotingClient({ registry: new ProcessorRegistry() });
    for (let i = 0; i < 2; i++) nameServers.push({ port: await restartablePort(), process: undefined });
    for (const [index, namesrv] of nameServers.entries()) {
      const controller =
        index === 0 ? ['--controller', '--controller-dir', `${dir}/controller`, '--controller-timeout-ms', '2000'] : [];
      namesrv.process = await startCli(
        ['namesrv', '--host', '127.0.0.1', '--port', String(namesrv.port), ...controller],
        /NameServer listening/,
      );
    }
    for (const name of ['broker-a', 'broker-b']) {
      for (const id of [0, 1]) {
        const node = {
          name,
          id,
          port: await restartablePort(),
          haPort: await restartablePort(),
          dir: `${dir}/${name}-${id}`,
          process: undefined,
        };
        brokers.push(node);
        await startBroker(node);
      }
    }
    await eventually(
      async () => {
        const info = await replicaInfo();
        return info.groups.length === 2 && info.groups.every((group) => group.epoch === 1);
      },
      { timeoutMs: 10_000 },
    );
    for (const node of brokers) {
      const created = await client.invoke(address(node.port), createTopicRequest(TOPIC, 4), TIMEOUT_MS);
      assert.equal(created.code, ResponseCode.Success, created.remark);
    }
    const nameServerList = nameServers.map((ns) => address(ns.port));
    producer = new Producer({
      group: 'cluster-failover-producer',
      nameServers: nameServerList,
      sendTimeoutMs: 2000,
      faultIsolationMs: 2000,
    });
    await producer.start();
    consumer = new PushConsumer({ group: GROUP, nameServers: nameServerList, consumeFromWhere: 'FIRST_OFFSET' });
    consumer.subscribe(TOPIC, '*', (messages) => {
      for (const message of messages) received.add(message.body.toString('utf8'));
      return 'CONSUME_SUCCESS';
    });
    await consumer.start();
  });

  after(async () => {
    stopSending = true;
    await sending;
    await consumer?.shutdown().catch(() => undefined);
    await producer?.shutdown().catch(() => undefined);
    await client?.close();
    for (const node of brokers) await node.process?.stop('SIGKILL');
    for (const namesrv of nameServers) await namesrv.process?.stop('SIGKILL');
    await cleanup();
  });

  /** On failure: the warnings and errors each process logged, to see what went wrong where. */
  function processWarnings(): string {
    const nodes = [
      ...nameServers.map((ns, i) => ({ label: `namesrv-${i}`, process: ns.process })),
      ...brokers.map((node) => ({ label: `${node.name}-${node.id}`, process: node.process })),
    ];
    return nodes
      .map(({ label, process }) => {
        const lines = (process?.output() ?? '').split('\n').filter((line) => /"level":(40|50|60)/.test(line));
        return `--- ${label}\n${lines.slice(-15).join('\n')}`;
      })
      .join('\n');
  }

  it('loses no acknowledged message when a master is killed, promotes its slave, and the old master rejoins', async (t) => {
    t.after(() => {
      if (!stopSending || sending !== undefined) t.diagnostic(processWarnings());
    });
    sending = sendLoop();
    // Both groups take sync-replicated sends before anything is killed.
    await eventually(
      () => {
        const groups = new Set(acked.values());
        return acked.size >= 200 && groups.has('broker-a') && groups.has('broker-b');
      },
      { timeoutMs: 30_000 },
    );

    const masterA = brokers[0] as BrokerNode;
    const slaveA = brokers[1] as BrokerNode;
    const killedAt = Date.now();
    await masterA.process?.stop('SIGKILL');
    masterA.process = undefined;

    await eventually(async () => (await runtimeInfo(slaveA))['brokerId'] === '0', { timeoutMs: 15_000 });
    const promotedMs = Date.now() - killedAt;
    // Sends to broker-a resume on the promoted master (unreplicated until a slave is back: SLAVE_NOT_AVAILABLE).
    await eventually(() => firstSince(killedAt, (entry) => entry.broker === 'broker-a') !== undefined, {
      timeoutMs: 20_000,
    });
    const resumedA = (firstSince(killedAt, (entry) => entry.broker === 'broker-a') ?? 0) - killedAt;
    const resumedAny = (firstSince(killedAt, (entry) => entry.status === 'SEND_OK') ?? killedAt) - killedAt;
    t.diagnostic(
      `failover: promoted after ${promotedMs} ms; first SEND_OK anywhere after ${resumedAny} ms; broker-a stores sends again after ${resumedA} ms`,
    );
    assert.ok(promotedMs < 10_000);

    await startBroker(masterA);
    await eventually(
      async () => {
        const [oldMaster, newMaster] = await Promise.all([runtimeInfo(masterA), runtimeInfo(slaveA)]);
        return oldMaster['brokerId'] === '1' && newMaster['brokerId'] === '0';
      },
      { timeoutMs: 20_000 },
    );
    const rejoinedAt = Date.now();
    await eventually(
      () => firstSince(rejoinedAt, (entry) => entry.broker === 'broker-a' && entry.status === 'SEND_OK') !== undefined,
      { timeoutMs: 20_000 },
    );

    // A NameServer dies: the other one keeps routes flowing.
    const killedNamesrv = nameServers[1];
    await killedNamesrv?.process?.stop('SIGKILL');
    if (killedNamesrv !== undefined) killedNamesrv.process = undefined;
    const nsKilledAt = Date.now();
    const ackedBefore = acked.size;
    await eventually(() => acked.size >= ackedBefore + 100, { timeoutMs: 20_000 });
    assert.ok(firstSince(nsKilledAt, (entry) => entry.status === 'SEND_OK') !== undefined);

    stopSending = true;
    await sending;
    sending = undefined;
    const info = await replicaInfo();
    const groupA = info.groups.find((group) => group.brokerName === 'broker-a');
    assert.equal(groupA?.masterAddr, address(slaveA.port));
    assert.ok((groupA?.epoch ?? 0) >= 2);

    await eventually(
      () => {
        const missing = [...acked.keys()].filter((body) => !received.has(body));
        if (missing.length > 0) throw new Error(`${missing.length} acknowledged messages not consumed yet`);
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );

    // No divergence: the rejoined old master holds exactly the new master's messages.
    await eventually(
      async () => {
        const [oldMaster, newMaster] = await Promise.all([runtimeInfo(masterA), runtimeInfo(slaveA)]);
        return oldMaster['commitLogMaxOffset'] === newMaster['commitLogMaxOffset'];
      },
      { timeoutMs: 20_000 },
    );
    for (let queueId = 0; queueId < 4; queueId++) {
      assert.deepEqual(await bodiesOn(masterA, queueId), await bodiesOn(slaveA, queueId));
    }
    const failures = sendLog.filter((entry) => entry.status !== 'SEND_OK').length;
    t.diagnostic(
      `sends: ${sendLog.length}, acknowledged ${acked.size}, not SEND_OK ${failures}, consumed ${received.size}`,
    );
  });
});
