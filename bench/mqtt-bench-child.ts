/**
 * The server side of the MQTT benchmark, one MQTT server per child process so that on 2 cores the
 * server gets a core of its own while the benchmark process drives the clients on the other.
 * `argv[2]` picks the server:
 *   rocketbridge -> NameServer + broker (async flush, data in a temp dir) + MQTT front end bound to
 *                   them through the in-process transport, as `rocketbridge start` wires them;
 *   aedes        -> a standalone aedes with its default in-memory persistence and mq on TCP.
 * Line protocol on stdin/stdout:
 *   started      -> `READY {"port": n}`
 *   `gc`         -> runs a full garbage collection (needs --expose-gc) and prints `GC`
 *   `stop` / EOF -> shuts down, removes the data dir, prints `STOPPED` and exits.
 * CPU time and memory are read by the parent from /proc/<pid>, the same way as for mosquitto.
 */
import './bench-env.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Aedes } from 'aedes';
import { startMqttServer } from '../src/adapters/mqtt/server.js';
import { Broker } from '../src/engine/broker/broker.js';
import { defaultBrokerConfig } from '../src/engine/broker/broker-config.js';
import { InProcessNetwork, InProcessTransport } from '../src/engine/client/transport-in-process.js';
import { NameServer } from '../src/engine/namesrv/name-server.js';
import { defaultMessageStoreConfig } from '../src/engine/store/api.js';

interface Running {
  port: number;
  stop(): Promise<void>;
}

async function startRocketbridge(): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rb-bench-mqtt-'));
  const nameServer = new NameServer({ host: '127.0.0.1', port: 0 });
  await nameServer.start();
  const broker = new Broker(
    defaultBrokerConfig(dataDir, {
      host: '127.0.0.1',
      port: 0,
      namesrvAddresses: [nameServer.address],
      store: { ...defaultMessageStoreConfig, storePath: dataDir, flushPolicy: 'async', retentionCheckIntervalMs: 0 },
    }),
  );
  await broker.start();
  const network = new InProcessNetwork();
  network.bind(nameServer.address, nameServer.registry);
  network.bind(broker.address, broker.registry);
  const mqtt = await startMqttServer({
    host: '127.0.0.1',
    port: 0,
    nameServers: [nameServer.address],
    transport: new InProcessTransport(network),
  });
  return {
    port: mqtt.port,
    async stop() {
      try {
        await mqtt.close();
        await broker.shutdown();
        await nameServer.shutdown();
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
  process.stdout.write(`READY ${JSON.stringify({ port: running.port })}\n`);
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await running.stop();
    // stdout is a pipe, written synchronously on Linux; a --cpu-prof child still writes its profile.
    process.stdout.write('STOPPED\n');
    process.exit(0);
  };
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = line.trim();
    if (command === 'gc') {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      process.stdout.write('GC\n');
    } else if (command === 'stop') {
      void stop();
    }
  });
  lines.on('close', () => void stop());
}

await main();
