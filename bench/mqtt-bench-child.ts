/**
 * The server side of the MQTT benchmark, one MQTT server per child process so that on 2 cores the
 * server gets a core of its own while the benchmark process drives the clients on the other.
 * `argv[2]` picks the server:
 *   rocketbridge -> NameServer + broker (async flush, data in a temp dir) + MQTT front end bound to
 *                   them through the in-process transport, as `rocketbridge start` wires them;
 *   aedes        -> a standalone aedes with its default in-memory persistence and mq on TCP.
 * Line protocol on stdin/stdout (bench-process.ts):
 *   started      -> `READY {"port": n}`
 *   `gc`         -> runs a full garbage collection (needs --expose-gc) and prints `GC`
 *   `cpu`        -> `CPU {"userMs": n, "systemMs": n}` (unused here: see below)
 *   `stop` / EOF -> shuts down, removes the data dir, prints `STOPPED` and exits.
 * CPU time and memory are read by the parent from /proc/<pid>, the same way as for mosquitto.
 */
import './bench-env.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { startMqttServer } from '../src/adapters/mqtt/server.js';
import { serveBenchChild } from './bench-process.js';
import { inProcessTransport, startBenchServers } from './broker-bench-cluster.js';

interface Running {
  port: number;
  stop(): Promise<void>;
}

async function startRocketbridge(): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rb-bench-mqtt-'));
  const servers = await startBenchServers(dataDir);
  const mqtt = await startMqttServer({
    host: '127.0.0.1',
    port: 0,
    nameServers: [servers.namesrv],
    transport: inProcessTransport(servers),
  });
  return {
    port: mqtt.port,
    async stop() {
      try {
        await mqtt.close();
        await servers.stop();
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}

async function startAedes(): Promise<Running> {
  const aedes = await Aedes.createBroker();
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    aedes.handle(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await closed;
    },
  };
}

async function main(): Promise<void> {
  const kind = process.argv[2];
  if (kind !== 'rocketbridge' && kind !== 'aedes') throw new Error(`unknown server kind ${String(kind)}`);
  const running = kind === 'rocketbridge' ? await startRocketbridge() : await startAedes();
  serveBenchChild({ port: running.port }, () => running.stop());
}

await main();
