/**
 * `rocketbridge admin cluster` as its own process against an in-process NameServer, master and
 * slave: the JSON rows carry both brokers with their roles, CommitLog offsets and replication lag; a
 * broker that does not answer is a row, not a crash; an unreachable NameServer or a bad --namesrv is
 * one line on stderr and exit code 1.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BrokerRow, ClusterView } from '../../../src/cli/admin-command.js';
import { RequestCode, ResponseCode } from '../../../src/engine/remoting/codes.js';
import { createRequest } from '../../../src/engine/remoting/command.js';
import { eventually } from '../../helpers/eventually.js';
import { createTopicRequest, sendV2Request } from '../broker/broker-harness.js';
import { type HaCluster, REQUEST_TIMEOUT_MS, startCluster } from '../ha/ha-harness.js';

const here = fileURLToPath(import.meta.url);
const extension = here.endsWith('.ts') ? 'ts' : 'js';
const mainPath = fileURLToPath(new URL(`../../../src/cli/main.${extension}`, import.meta.url));
const TOPIC = 'AdminClusterTopic';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion; logs stay off unless a test asks (they would share stdout). */
async function runCli(args: readonly string[]): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['RB_LOG_LEVEL'];
  const child = spawn(process.execPath, [...process.execArgv, mainPath, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { code, stdout, stderr };
}

async function clusterJson(namesrv: string): Promise<ClusterView> {
  const result = await runCli(['admin', 'cluster', '--namesrv', namesrv, '--json']);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as ClusterView;
}

/** A port nothing listens on: bound once by the kernel, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

function rowOf(view: ClusterView, brokerName: string, brokerId: number): BrokerRow {
  const row = view.brokers.find((each) => each.brokerName === brokerName && each.brokerId === brokerId);
  assert.ok(row !== undefined, `no row for ${brokerName}/${brokerId} in ${JSON.stringify(view.brokers)}`);
  return row;
}

describe('rocketbridge admin cluster', () => {
  let cluster: HaCluster;
  let sent = 0;

  before(async () => {
    cluster = await startCluster();
    const created = await cluster.call(cluster.master, createTopicRequest(TOPIC, 2));
    assert.equal(created.code, ResponseCode.Success, created.remark);
  });

  after(async () => {
    await cluster.close();
  });

  async function sendToMaster(count: number): Promise<void> {
    for (const end = sent + count; sent < end; sent++) {
      const response = await cluster.call(
        cluster.master,
        sendV2Request(TOPIC, Buffer.from(`admin message ${sent} `.repeat(10)), { queueId: sent % 2 }),
      );
      assert.equal(response.code, ResponseCode.Success, response.remark);
    }
  }

  it('lists master and slave with roles, offsets and no lag once the slave caught up', async () => {
    await sendToMaster(40);
    const master = cluster.master;
    const slave = cluster.slave;
    assert.ok(slave !== undefined);
    const masterMax = master.store.stats().commitLogMaxOffset;
    assert.ok(masterMax > 0);
    await eventually(
      () => {
        assert.equal(slave.store.stats().commitLogMaxOffset, masterMax);
        assert.equal(master.ha.master?.slaveAckedOffset, masterMax);
      },
      { timeoutMs: 10_000 },
    );
    const view = await eventually(
      async () => {
        const answer = await clusterJson(cluster.nameServer.address);
        assert.equal(answer.brokers.length, 2, JSON.stringify(answer.brokers));
        return answer;
      },
      { timeoutMs: 10_000 },
    );
    assert.deepEqual(view.nameServers, [cluster.nameServer.address]);
    // Master and slave share one broker name; rows are sorted by name, then id.
    const brokerName = view.brokers[0]?.brokerName ?? '';
    const masterRow = rowOf(view, brokerName, 0);
    const slaveRow = rowOf(view, brokerName, 1);
    assert.equal(masterRow.address, master.address);
    assert.equal(slaveRow.address, slave.address);
    assert.equal(masterRow.clusterName, slaveRow.clusterName);
    for (const row of [masterRow, slaveRow]) {
      assert.equal(row.reachable, true);
      assert.equal(row.error, null);
      assert.equal(row.commitLogMaxOffset, masterMax);
    }
    assert.equal(masterRow.role, 'ASYNC_MASTER');
    assert.equal(slaveRow.role, 'SLAVE');
    assert.equal(masterRow.commitLogMinOffset, master.store.stats().commitLogMinOffset);
    assert.equal(slaveRow.commitLogMinOffset, slave.store.stats().commitLogMinOffset);
    assert.equal(slaveRow.lagBytes, 0);
    assert.equal(masterRow.lagBytes, null);
    assert.equal(masterRow.slaveCount, 1);
    assert.equal(masterRow.unconfirmedBytes, 0);
    assert.equal(masterRow.replicationFrom, 'master');
    assert.equal(slaveRow.slaveCount, null);
  });

  it('shows a slave that stopped replicating as behind by the bytes it misses', async () => {
    // The slave restarts on its own data but with an HA address nobody serves: it stays where it was.
    await cluster.stopSlave();
    await sendToMaster(25);
    const slave = await cluster.startSlave({
      haMasterAddress: `127.0.0.1:${await closedPort()}`,
      haReconnectIntervalMs: 60_000,
    });
    const masterMax = cluster.master.store.stats().commitLogMaxOffset;
    const slaveMax = slave.store.stats().commitLogMaxOffset;
    assert.ok(masterMax > slaveMax && slaveMax > 0, `master ${masterMax}, slave ${slaveMax}`);
    const view = await eventually(
      async () => {
        const answer = await clusterJson(cluster.nameServer.address);
        assert.equal(answer.brokers.filter((row) => row.reachable).length, 2, JSON.stringify(answer.brokers));
        return answer;
      },
      { timeoutMs: 10_000 },
    );
    const name = view.brokers[0]?.brokerName ?? '';
    const masterRow = rowOf(view, name, 0);
    const slaveRow = rowOf(view, name, 1);
    assert.equal(masterRow.commitLogMaxOffset, masterMax);
    assert.equal(slaveRow.commitLogMaxOffset, slaveMax);
    assert.equal(slaveRow.lagBytes, masterMax - slaveMax);
    // The master's own view: no HA connection, so nothing confirmed by anyone.
    assert.equal(masterRow.replicationFrom, 'master');
    assert.equal(masterRow.slaveCount, 0);
    assert.equal(masterRow.unconfirmedBytes, null);
  });

  it('marks a registered broker that does not answer as unreachable and still lists the rest', async () => {
    const ghostAddress = `127.0.0.1:${await closedPort()}`;
    const clusterName = (await clusterJson(cluster.nameServer.address)).brokers[0]?.clusterName ?? 'DefaultCluster';
    const registered = await cluster.client.invoke(
      cluster.nameServer.address,
      createRequest(
        RequestCode.RegisterBroker,
        {
          brokerName: 'ghost-broker',
          brokerAddr: ghostAddress,
          clusterName,
          haServerAddr: ghostAddress,
          brokerId: '0',
          compressed: 'false',
        },
        Buffer.from(JSON.stringify({ filterServerList: [], topicConfigSerializeWrapper: { topicConfigTable: {} } })),
      ),
      REQUEST_TIMEOUT_MS,
    );
    assert.equal(registered.code, ResponseCode.Success, registered.remark);

    const view = await clusterJson(cluster.nameServer.address);
    assert.equal(view.brokers.length, 3);
    const ghost = rowOf(view, 'ghost-broker', 0);
    assert.equal(ghost.reachable, false);
    assert.equal(ghost.address, ghostAddress);
    assert.ok(ghost.error !== null && ghost.error.length > 0);
    assert.equal(ghost.role, null);
    assert.equal(ghost.commitLogMaxOffset, null);
    assert.equal(view.brokers.filter((row) => row.reachable).length, 2);

    const table = await runCli(['admin', 'cluster', '--namesrv', cluster.nameServer.address]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^CLUSTER\s+BROKER\s+ID\s+ADDRESS\s+ROLE\s+MIN OFFSET\s+MAX OFFSET\s+REPLICATION$/);
    const ghostLine = lines.find((line) => line.includes(ghostAddress));
    assert.match(ghostLine ?? '', /UNREACHABLE.*unreachable: /);
    const slaveLine = lines.find((line) => line.includes(cluster.slave?.address ?? '?'));
    assert.match(slaveLine ?? '', /SLAVE.* \d+ B behind master$/);
    assert.ok(lines.some((line) => line.includes(cluster.master.address) && line.includes('ASYNC_MASTER')));
  });

  it('fails with one line and exit code 1 when no NameServer answers', async () => {
    const address = `127.0.0.1:${await closedPort()}`;
    const result = await runCli(['admin', 'cluster', '--namesrv', address, '--json']);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0] ?? '', new RegExp(`^rocketbridge: no NameServer answered \\(${address}\\)`));
  });

  it('fails with one line and exit code 1 on an unparseable --namesrv', async () => {
    for (const bad of ['not-an-address', '127.0.0.1:99999', `${cluster.nameServer.address};host-without-port`]) {
      const result = await runCli(['admin', 'cluster', '--namesrv', bad]);
      assert.equal(result.code, 1, bad);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /^rocketbridge: --namesrv "[^"]+" is not host:port[^\n]*\n$/, bad);
    }
  });
});
