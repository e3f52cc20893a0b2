/**
 * The server side of the WebSocket benchmark, one server per child process so that on 2 cores the
 * server gets a core of its own while the benchmark process drives the clients on the other.
 * `argv[2]` picks the server:
 *   rocketbridge -> NameServer + broker (async flush, data in a temp dir) + the HTTP listener with the
 *                   WebSocket handler at /ws over the in-process transport, as `rocketbridge start`
 *                   wires them (src/cli/front-ends.ts) without MQTT and AMQP; the broker also
 *                   listens on TCP, so the engine Producer baseline reaches the same broker;
 *   echo         -> a plain `ws` server that echoes every message (the memory baseline).
 * Line protocol on stdin/stdout: bench-process.ts's (serveBenchChild: `cpu`, `gc`, `stop`), where
 *   started      -> `READY {"port": n, "namesrv"?: "host:port"}`
 *   `gc`         -> a full garbage collection (needs --expose-gc), then `GC {"heapUsedBytes": n}`
 *   `stop` / EOF -> shuts down (removing the data dir), prints `STOPPED` and exits.
 */
import './bench-env.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { HttpServer } from '../src/adapters/http/server.js';
import { createWebSocketHandler, webSocketAssets } from '../src/adapters/websocket/index.js';
import { Broker } from '../src/engine/broker/broker.js';
import { defaultBrokerConfig } from '../src/engine/broker/broker-config.js';
import { AdminClient } from '../src/engine/client/index.js';
import { InProcessNetwork, InProcessTransport } from '../src/engine/client/transport-in-process.js';
import { NameServer } from '../src/engine/namesrv/name-server.js';
import { defaultMessageStoreConfig } from '../src/engine/store/api.js';
import { serveBenchChild } from './bench-process.js';

interface Running {
  ready: { port: number; namesrv?: string };
  stop(): Promise<void>;
}

async function startRocketbridge(): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rb-bench-ws-'));
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
  const nameServers = [nameServer.address];
  const admin = new AdminClient({ nameServers, transport: new InProcessTransport(network) });
  await admin.start();
  const http = new HttpServer({ host: '127.0.0.1', port: 0, admin, listeners: () => [] });
  const webSocket = createWebSocketHandler({ nameServers, transport: new InProcessTransport(network) });
  http.handleUpgrade('/ws', (request, socket, head) => webSocket.handleUpgrade(request, socket, head));
  for (const [path, asset] of webSocketAssets()) http.serveAsset(path, asset);
  await http.listen();
  return {
    ready: { port: http.port, namesrv: nameServer.address },
    async stop() {
      try {
        await http.close();
        await webSocket.close();
        await admin.shutdown();
        await broker.shutdown();
        await nameServer.shutdown();
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}

async function startEcho(): Promise<Running> {
  const server = createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    ready: { port: (server.address() as AddressInfo).port },
    async stop() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function main(): Promise<void> {
  const kind = process.argv[2];
  if (kind !== 'rocketbridge' && kind !== 'echo') throw new Error(`unknown server kind ${String(kind)}`);
  const running = kind === 'rocketbridge' ? await startRocketbridge() : await startEcho();
  serveBenchChild(
    running.ready,
    () => running.stop(),
    () => ({ heapUsedBytes: process.memoryUsage().heapUsed }),
  );
}

await main();
