/**
 * The server side of the AMQP benchmark, run as a child process so the engine and the AMQP front end
 * get a core of their own while the benchmark drives amqplib on the other. Wired as `rocketbridge
 * start` wires them: a NameServer, a broker and an AmqpServer reaching both in process. The broker's
 * store flushes as `--flush sync|async` says (default async).
 * Line protocol on stdin/stdout (bench-process.ts):
 *   started      -> `READY {"amqpPort": n}`
 *   `cpu`        -> `CPU {"userMs": n, "systemMs": n}` (this process's CPU time so far)
 *   `stop` / EOF -> shuts down, removes the data dir, prints `STOPPED` and exits.
 */
import './bench-env.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AmqpServer } from '../src/adapters/amqp/server.js';
import { serveBenchChild } from './bench-process.js';
import { stringArgument } from './bench-util.js';
import { inProcessTransport, startBenchServers } from './broker-bench-cluster.js';

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rb-bench-amqp-'));
  const flushPolicy = stringArgument('flush') === 'sync' ? 'sync' : 'async';
  const servers = await startBenchServers(dataDir, { flushPolicy });
  const amqp = new AmqpServer({
    host: '127.0.0.1',
    port: 0,
    nameServers: [servers.namesrv],
    transport: inProcessTransport(servers),
  });
  await amqp.listen();
  serveBenchChild({ amqpPort: amqp.port }, async () => {
    try {
      await amqp.close();
      await servers.stop();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
}

await main();
