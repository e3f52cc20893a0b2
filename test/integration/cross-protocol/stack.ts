/**
 * The embedded stack `rocketbridge start` runs (NameServer, broker, MQTT, AMQP, HTTP with the
 * WebSocket API), started on free ports with test timings, every front end on its own in-process
 * transport.
 */
import { AmqpServer } from '../../../src/adapters/amqp/server.js';
import { HttpServer } from '../../../src/adapters/http/server.js';
import { type MqttServer, startMqttServer } from '../../../src/adapters/mqtt/server.js';
import {
  createWebSocketHandler,
  type WebSocketHandler,
  webSocketAssets,
} from '../../../src/adapters/websocket/index.js';
import { AdminClient } from '../../../src/engine/client/index.js';
import { InProcessTransport } from '../../../src/engine/client/transport-in-process.js';
import { startCluster, type TestCluster } from '../client/cluster.js';
import { FAST_SERVER_OPTIONS } from '../mqtt/mqtt-harness.js';

export interface EmbeddedStack {
  cluster: TestCluster;
  mqttServer: MqttServer;
  amqpServer: AmqpServer;
  admin: AdminClient;
  http: HttpServer;
  wsHandler: WebSocketHandler;
  /** Stops the front ends, then the engine. */
  close(): Promise<void>;
}

export async function startEmbeddedStack(options: { serveWebAssets?: boolean } = {}): Promise<EmbeddedStack> {
  const cluster = await startCluster();
  const nameServers = [cluster.namesrvAddress];
  const inProcess = (): { transport: InProcessTransport } => ({ transport: new InProcessTransport(cluster.network) });
  const mqttServer = await startMqttServer({
    host: '127.0.0.1',
    port: 0,
    nameServers,
    ...inProcess(),
    ...FAST_SERVER_OPTIONS,
  });
  const amqpServer = new AmqpServer({ host: '127.0.0.1', port: 0, nameServers, ...inProcess() });
  await amqpServer.listen();
  const admin = new AdminClient({ nameServers, ...inProcess() });
  await admin.start();
  // Wired as src/cli/front-ends.ts does.
  const http = new HttpServer({ host: '127.0.0.1', port: 0, admin, listeners: () => [] });
  const wsHandler = createWebSocketHandler({ nameServers, pollMs: 500, ...inProcess() });
  http.handleUpgrade('/ws', (request, socket, head) => wsHandler.handleUpgrade(request, socket, head));
  if (options.serveWebAssets === true) {
    for (const [path, asset] of webSocketAssets()) http.serveAsset(path, asset);
  }
  await http.listen();
  return {
    cluster,
    mqttServer,
    amqpServer,
    admin,
    http,
    wsHandler,
    async close() {
      await http.close();
      await wsHandler.close();
      await amqpServer.close();
      await mqttServer.close();
      await admin.shutdown();
      await cluster.close();
    },
  };
}
