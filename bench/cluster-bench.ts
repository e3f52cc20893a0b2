/**
 * Cluster benchmark (issue 8), every server its own `rocketbridge` process on 127.0.0.1:
 *   1. 1 KiB sends through our Producer (64 in flight) to a master alone, to a master with an async
 *      slave and to a SYNC_MASTER with a slave, in the same run; ratios against the master alone.
 *   2. Failover time: a controller NameServer and a SYNC_MASTER/slave pair in controller mode, a
 *      producer sending one message at a time; the current master is killed with SIGKILL, and the
 *      time from the kill to the first send the group stores again (the promoted master answers
 *      SLAVE_NOT_AVAILABLE until a slave is back) is taken over --trials runs (default 5); the killed
 *      broker is restarted and rejoins as a slave between trials. Median and max are reported.
 *
 * Options: --messages N (per replication mode, default 30000), --trials N (default 5).
 */
import './bench-env.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Producer } from '../src/engine/client/producer.js';
import { ProcessorRegistry } from '../src/engine/remoting/channel.js';
import { createRequest } from '../src/engine/remoting/command.js';
import { RemotingClient } from '../src/engine/remoting/tcp-client.js';
import { type CliProcess, startCli } from '../test/helpers/cli-process.js';
import { restartablePort } from '../test/helpers/ports.js';
import { argument, closedLoop, type Measurement, percentile, printTable, sleepMs } from './bench-util.js';

const totalMessages = Math.floor(argument('messages', 30_000));
const trials = Math.floor(argument('trials', 5));
const SENDS_IN_FLIGHT = 64;
const BODY = Buffer.alloc(1024, 'x');
/** CONTROLLER_GET_REPLICA_INFO (namesrv/replica-controller.ts). */
const GET_REPLICA_INFO = 1004;

interface Node {
  id: number;
  port: number;
  haPort: number;
  dir: string;
  process: CliProcess | undefined;
}

const address = (port: number): string => `127.0.0.1:${port}`;

async function startNamesrv(port: number, controllerDir?: string): Promise<CliProcess> {
  const controller = controllerDir === undefined ? [] : ['--controller', '--controller-dir', controllerDir];
  return startCli(['namesrv', '--host', '127.0.0.1', '--port', String(port), ...controller], /NameServer listening/);
}

async function newNode(root: string, id: number): Promise<Node> {
  return {
    id,
    port: await restartablePort(),
    haPort: await restartablePort(),
    dir: join(root, `broker-${id}`),
    process: undefined,
  };
}

async function startBroker(node: Node, namesrv: string, role: string, controller?: string): Promise<void> {
  const args = ['broker', '--host', '127.0.0.1', '--port', String(node.port), '--ha-port', String(node.haPort)];
  args.push('--broker-name', 'bench', '--broker-id', String(node.id), '--data', node.dir, '--namesrv', namesrv);
  args.push('--role', role);
  if (controller !== undefined) args.push('--controller', controller, '--controller-heartbeat-ms', '200');
  node.process = await startCli(args, /listening on/);
}

/** 1 KiB sends, 64 in flight, after a warm-up that also waits for the slave (sync mode answers SLAVE_NOT_AVAILABLE before). */
async function replicationRun(mode: 'no slave' | 'async slave' | 'sync slave'): Promise<Measurement> {
  const root = mkdtempSync(join(tmpdir(), 'rb-cluster-bench-'));
  const namesrvPort = await restartablePort();
  const processes: CliProcess[] = [];
  try {
    processes.push(await startNamesrv(namesrvPort));
    const master = await newNode(root, 0);
    await startBroker(master, address(namesrvPort), mode === 'sync slave' ? 'SYNC_MASTER' : 'ASYNC_MASTER');
    processes.push(master.process as CliProcess);
    if (mode !== 'no slave') {
      const slave = await newNode(root, 1);
      await startBroker(slave, address(namesrvPort), 'SLAVE');
      processes.push(slave.process as CliProcess);
    }
    const producer = new Producer({ group: 'cluster-bench', nameServers: [address(namesrvPort)] });
    await producer.start();
    try {
      const topic = 'ClusterBench';
      for (let attempt = 0; ; attempt++) {
        const result = await producer.send({ topic, body: BODY }).catch(() => undefined);
        if (result?.status === 'SEND_OK') break;
        if (attempt > 200) throw new Error(`${mode}: sends never answered SEND_OK`);
        await sleepMs(50);
      }
      let notOk = 0;
      const send = async (): Promise<number> => {
        const result = await producer.send({ topic, body: BODY });
        if (result.status !== 'SEND_OK') notOk++;
        return 1;
      };
      await closedLoop(`${mode} warm-up`, 3000, SENDS_IN_FLIGHT, send);
      const run = await closedLoop(mode, totalMessages, SENDS_IN_FLIGHT, send, 60_000);
      if (notOk > 0) console.log(`${mode}: ${notOk} sends not SEND_OK`);
      return {
        scenario: `Producer.send 1 KiB, ${SENDS_IN_FLIGHT} in flight, ${mode}`,
        messages: run.messages,
        bytes: run.messages * BODY.length,
        seconds: run.seconds,
        latenciesMs: run.latenciesMs,
      };
    } finally {
      await producer.shutdown();
    }
  } finally {
    for (const child of processes.reverse()) await child.stop('SIGTERM');
    rmSync(root, { recursive: true, force: true });
  }
}

async function failoverTrials(): Promise<{ failoverMs: number[]; promotionMs: number[] }> {
  const root = mkdtempSync(join(tmpdir(), 'rb-failover-bench-'));
  const namesrvPort = await restartablePort();
  const namesrv = address(namesrvPort);
  const client = new RemotingClient({ registry: new ProcessorRegistry() });
  const nodes = [await newNode(root, 0), await newNode(root, 1)];
  let namesrvProcess: CliProcess | undefined;
  const failoverMs: number[] = [];
  const promotionMs: number[] = [];
  const stored: number[] = [];
  let stop = false;
  let producer: Producer | undefined;
  let loop: Promise<void> | undefined;
  const masterInfo = async (): Promise<{ epoch: number; masterAddr: string }> => {
    const response = await client.invoke(namesrv, createRequest(GET_REPLICA_INFO, {}), 2000);
    const info = JSON.parse(response.body?.toString('utf8') ?? '{}') as {
      groups?: { epoch: number; masterAddr: string }[];
    };
    return info.groups?.[0] ?? { epoch: 0, masterAddr: '' };
  };
  try {
    namesrvProcess = await startNamesrv(namesrvPort, join(root, 'controller'));
    for (const node of nodes) await startBroker(node, namesrv, 'SYNC_MASTER', namesrv);
    const started = (producer = new Producer({ group: 'failover-bench', nameServers: [namesrv], sendTimeoutMs: 1000 }));
    await started.start();
    let okSince = 0;
    loop = (async () => {
      for (let i = 0; !stop && i < 10_000_000; i++) {
        const result = await started.send({ topic: 'FailoverBench', body: BODY }).catch(() => undefined);
        if (result !== undefined) {
          stored.push(Date.now());
          if (result.status === 'SEND_OK') okSince = Date.now();
        } else {
          await sleepMs(5);
        }
      }
    })();
    for (let trial = 1; trial <= trials; trial++) {
      // A healthy pair first: replicated sends answered SEND_OK.
      const readyFrom = Date.now();
      while (okSince < readyFrom + 200) {
        if (Date.now() - readyFrom > 60_000) throw new Error(`trial ${trial}: the pair never became healthy`);
        await sleepMs(50);
      }
      const before = await masterInfo();
      const victim = nodes.find((node) => address(node.port) === before.masterAddr);
      if (victim === undefined) throw new Error(`trial ${trial}: master ${before.masterAddr} is none of ours`);
      const killedAt = Date.now();
      await victim.process?.stop('SIGKILL');
      victim.process = undefined;
      let promotedAt = 0;
      let resumedAt = 0;
      while (promotedAt === 0 || resumedAt === 0) {
        if (Date.now() - killedAt > 60_000) throw new Error(`trial ${trial}: no failover within 60 s`);
        if (promotedAt === 0 && (await masterInfo()).epoch > before.epoch) promotedAt = Date.now();
        resumedAt = stored.find((at) => at > killedAt) ?? 0;
        await sleepMs(10);
      }
      failoverMs.push(resumedAt - killedAt);
      promotionMs.push(promotedAt - killedAt);
      console.log(
        `trial ${trial}: promoted after ${promotedAt - killedAt} ms, sends stored again after ${resumedAt - killedAt} ms`,
      );
      await startBroker(victim, namesrv, 'SYNC_MASTER', namesrv);
    }
    return { failoverMs, promotionMs };
  } finally {
    stop = true;
    await loop;
    await producer?.shutdown();
    await client.close();
    for (const node of nodes) await node.process?.stop('SIGTERM');
    await namesrvProcess?.stop('SIGTERM');
    rmSync(root, { recursive: true, force: true });
  }
}

// Two rounds in alternating order, so that warm-up and machine noise do not favour one mode.
const modes = ['no slave', 'async slave', 'sync slave'] as const;
const rounds = [modes, [...modes].reverse()];
for (const [round, order] of rounds.entries()) {
  const results = new Map<string, Measurement>();
  for (const mode of order) results.set(mode, await replicationRun(mode));
  const noSlave = results.get('no slave');
  printTable(
    `Replication, round ${round + 1} (baseline: the same master with no slave, same run)`,
    modes.map((mode) => ({
      measurement: results.get(mode) as Measurement,
      ...(noSlave !== undefined ? { baseline: noSlave } : {}),
    })),
  );
}

const { failoverMs, promotionMs } = await failoverTrials();
const sorted = (values: number[]): number[] => [...values].sort((a, b) => a - b);
console.log(
  `\nFailover over ${trials} trials (SIGKILL of the master, SYNC_MASTER + slave, controller heartbeat 200 ms)`,
);
console.log(
  `  kill -> slave promoted:        median ${percentile(sorted(promotionMs), 0.5)} ms, max ${Math.max(...promotionMs)} ms`,
);
console.log(
  `  kill -> first send stored:     median ${percentile(sorted(failoverMs), 0.5)} ms, max ${Math.max(...failoverMs)} ms`,
);
